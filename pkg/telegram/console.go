package telegram

import (
	"context"
	"log/slog"
	"sync/atomic"
)

// Console is the Sender of the local stack when no bot token is configured:
// it prints each message to the log instead of sending it.
type Console struct {
	logger *slog.Logger
	lastID atomic.Int64
}

// NewConsole returns a Console printing to logger.
func NewConsole(logger *slog.Logger) *Console {
	return &Console{logger: logger}
}

// SendMessage logs the message with its prefix and returns a local id (1, 2, …).
func (c *Console) SendMessage(ctx context.Context, text string, level Level) (int, error) {
	id := int(c.lastID.Add(1))
	c.logger.WarnContext(ctx, "telegram message (printed, not sent: no TELEGRAM_BOT_TOKEN)",
		"level", string(level), "message_id", id, "text", level.Prefix()+" "+text)
	return id, nil
}
