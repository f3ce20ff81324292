package qstashlocal

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// signatureLifetime is how long a delivery's JWT is valid, as in QStash.
const signatureLifetime = 5 * time.Minute

// SignatureClaims are the claims of an Upstash-Signature JWT.
type SignatureClaims struct {
	// Body is the base64url SHA-256 of the raw body, without padding.
	Body string `json:"body"`
	jwt.RegisteredClaims
}

// BodyHash is the body claim for body: base64url (RFC 4648) SHA-256 without
// `=` padding.
func BodyHash(body []byte) string {
	sum := sha256.Sum256(body)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// Sign makes the Upstash-Signature of a delivery of body to url at now, with
// key: an HS256 JWT with iss "Upstash", sub url, iat and nbf now, exp five
// minutes later, a unique jti and the body hash.
func Sign(key, url string, body []byte, now time.Time) (string, error) {
	now = now.Truncate(time.Second)
	claims := SignatureClaims{
		Body: BodyHash(body),
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    "Upstash",
			Subject:   url,
			ExpiresAt: jwt.NewNumericDate(now.Add(signatureLifetime)),
			NotBefore: jwt.NewNumericDate(now),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        "jwt_" + randomID(24),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(key))
	if err != nil {
		return "", fmt.Errorf("sign delivery to %s: %w", url, err)
	}
	return s, nil
}

const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomID is n random base-62 characters.
func randomID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	for i := range b {
		b[i] = idAlphabet[int(b[i])%len(idAlphabet)]
	}
	return string(b)
}
