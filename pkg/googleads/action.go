package googleads

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// searchTimeout bounds a name lookup shared by several callers: it runs
// detached from the first caller's context so that one caller giving up does
// not fail the others.
const searchTimeout = 30 * time.Second

var (
	resourceRE = regexp.MustCompile(`^customers/([0-9]{10})/conversionActions/([0-9]+)$`)
	numericRE  = regexp.MustCompile(`^[0-9]+$`)
)

// actionCache maps (customer, name) to a conversion action resource, with
// expiry; concurrent misses for one name share one search.
type actionCache struct {
	ttl   time.Duration
	mu    sync.Mutex
	m     map[string]cachedAction
	group singleflight.Group
}

type cachedAction struct {
	resource string
	expires  time.Time
}

func newActionCache(ttl time.Duration) *actionCache {
	return &actionCache{ttl: ttl, m: map[string]cachedAction{}}
}

func (a *actionCache) get(key string, now time.Time) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	hit, ok := a.m[key]
	return hit.resource, ok && now.Before(hit.expires)
}

// resolved is what one conversion action reference became: a resource, or an
// outcome for every conversion that names it.
type resolved struct {
	resource string
	fail     *Outcome
}

// resolveAction turns a conversion action given by numeric id, resource name
// or name into its resource name. Only names cost a search, and only once per
// ActionCacheTTL. Not found, removed or not UPLOAD_CLICKS is a ConfigError
// naming the action. The error is the caller's context error only.
func (c *Client) resolveAction(ctx context.Context, customerID, action string) (resolved, error) {
	action = strings.TrimSpace(action)
	switch {
	case action == "":
		return failed(ConfigError, CodeNoConversionAction, "no conversion action is configured"), nil
	case numericRE.MatchString(action):
		return resolved{resource: "customers/" + customerID + "/conversionActions/" + action}, nil
	case resourceRE.MatchString(action):
		return resolved{resource: action}, nil
	case strings.ContainsAny(action, "\r\n"):
		// GAQL refuses line breaks in strings, and Google Ads names have none.
		return failed(ConfigError, CodeNoConversionAction, fmt.Sprintf("conversion action name %q contains a line break", action)), nil
	}
	key := customerID + "\x00" + action
	if res, ok := c.actions.get(key, c.now()); ok {
		return resolved{resource: res}, nil
	}
	ch := c.actions.group.DoChan(key, func() (any, error) {
		// Another flight may have filled the cache since our look.
		if res, ok := c.actions.get(key, c.now()); ok {
			return resolved{resource: res}, nil
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), searchTimeout)
		defer cancel()
		r, err := c.searchAction(sctx, customerID, action)
		if err == nil && r.fail == nil {
			c.actions.mu.Lock()
			c.actions.m[key] = cachedAction{resource: r.resource, expires: c.now().Add(c.actions.ttl)}
			c.actions.mu.Unlock()
		}
		return r, err
	})
	select {
	case <-ctx.Done():
		return resolved{}, ctx.Err()
	case res := <-ch:
		if res.Err != nil {
			// Only the detached search's own timeout gets here.
			return failed(RetryLater, CodeTransport, "search conversion action: "+res.Err.Error()), nil
		}
		r := res.Val.(resolved)
		if r.fail != nil && r.fail.Status == RetryLater && r.fail.RetryAt.IsZero() {
			r.fail.RetryAt = c.now().Add(defaultRetryDelay)
		}
		return r, nil
	}
}

func failed(s Status, code, msg string) resolved {
	return resolved{fail: &Outcome{Status: s, Code: code, Message: msg}}
}

// gaqlString quotes s as a GAQL string literal: single quotes, with \ and '
// escaped by a backslash.
func gaqlString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// actionQuery is the googleAds:search query that finds a conversion action by
// its name.
func actionQuery(name string) string {
	return "SELECT conversion_action.resource_name, conversion_action.name, conversion_action.status, " +
		"conversion_action.type FROM conversion_action WHERE conversion_action.name = " + gaqlString(name)
}

func (c *Client) searchAction(ctx context.Context, customerID, name string) (resolved, error) {
	body, _ := json.Marshal(map[string]string{"query": actionQuery(name)})
	ans, err := c.post(ctx, "/customers/"+customerID+"/googleAds:search", body)
	if err != nil {
		if oe, ok := err.(*outcomeError); ok {
			o := oe.o
			return resolved{fail: &o}, nil
		}
		return resolved{}, err
	}
	if ans.status != http.StatusOK {
		o, _ := requestFailure(ans.status, ans.header, ans.body, c.now())
		o.Message = fmt.Sprintf("search conversion action %q: %s", name, o.Message)
		return resolved{fail: &o}, nil
	}
	var resp struct {
		Results []struct {
			ConversionAction struct {
				ResourceName string `json:"resourceName"`
				Name         string `json:"name"`
				Status       string `json:"status"`
				Type         string `json:"type"`
			} `json:"conversionAction"`
		} `json:"results"`
	}
	if err := json.Unmarshal(ans.body, &resp); err != nil {
		return failed(RetryLater, CodeBadResponse, fmt.Sprintf("search conversion action %q: unreadable answer: %v", name, err)), nil
	}
	var wrongType, removed string
	for _, r := range resp.Results {
		a := r.ConversionAction
		switch {
		case a.Name != name || !resourceRE.MatchString(a.ResourceName):
			continue
		case a.Status == "REMOVED":
			removed = a.ResourceName
		case a.Type != "UPLOAD_CLICKS":
			wrongType = a.Type
		default:
			return resolved{resource: a.ResourceName}, nil
		}
	}
	switch {
	case wrongType != "":
		return failed(ConfigError, CodeInvalidActionType, fmt.Sprintf(
			"conversion action %q in customer %s is of type %s; click conversions need an UPLOAD_CLICKS action", name, customerID, wrongType)), nil
	case removed != "":
		return failed(ConfigError, CodeNoConversionAction, fmt.Sprintf(
			"conversion action %q in customer %s is removed (%s)", name, customerID, removed)), nil
	}
	return failed(ConfigError, CodeNoConversionAction, fmt.Sprintf(
		"no conversion action named %q in customer %s", name, customerID)), nil
}
