package gateway

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/acme/idemcheckout/internal/samtemplate"
)

// JWT authorizer emulation for HttpApi routes.
//
// The token's SIGNATURE IS NOT VERIFIED locally: there is no JWKS to fetch
// offline. What is emulated: the identity source header must be present
// (else 401), the token must be three base64url parts with a JSON payload
// (else 401), `exp` and `nbf` are honoured (401), and `iss` / `aud` are
// checked against the authorizer's issuer / audience when the template
// resolves them to non-empty values (an unset JwtIssuer parameter disables
// the issuer check, so any locally minted token works). Route
// AuthorizationScopes are checked against `scope`/`scp` (403).

// jwtResult is what a successful authorization puts in the event.
type jwtResult struct {
	Claims map[string]string
	Scopes []string
}

// errUnauthorized and errForbidden map to API Gateway's 401 and 403.
var (
	errUnauthorized = errors.New("Unauthorized")
	errForbidden    = errors.New("Forbidden")
)

// authorize checks the request against the JWT authorizer a at time now.
func authorize(a *samtemplate.Authorizer, h http.Header, routeScopes []string, now time.Time) (*jwtResult, error) {
	cfg := a.JWT
	if cfg == nil {
		cfg = &samtemplate.JWTConfiguration{}
	}
	header := "Authorization"
	if s, ok := strings.CutPrefix(a.IdentitySource, "$request.header."); ok {
		header = s
	}
	raw := strings.TrimSpace(h.Get(header))
	if raw == "" {
		return nil, fmt.Errorf("%w: missing %s header", errUnauthorized, header)
	}
	// API Gateway accepts the token with or without the "Bearer " prefix.
	if len(raw) > 7 && strings.EqualFold(raw[:7], "bearer ") {
		raw = strings.TrimSpace(raw[7:])
	}
	claims, err := decodeJWT(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnauthorized, err)
	}
	if exp, ok := numericClaim(claims["exp"]); ok && now.Unix() >= exp {
		return nil, fmt.Errorf("%w: token expired", errUnauthorized)
	}
	if nbf, ok := numericClaim(claims["nbf"]); ok && now.Unix() < nbf {
		return nil, fmt.Errorf("%w: token not valid yet", errUnauthorized)
	}
	if cfg.Issuer != "" {
		if iss, _ := claims["iss"].(string); iss != cfg.Issuer {
			return nil, fmt.Errorf("%w: issuer %q is not %q", errUnauthorized, iss, cfg.Issuer)
		}
	}
	if len(cfg.Audience) > 0 {
		var got []string
		for _, a := range samtemplate.List(claims["aud"]) {
			if s, ok := a.(string); ok {
				got = append(got, s)
			}
		}
		if cid, ok := claims["client_id"].(string); ok {
			got = append(got, cid)
		}
		if !intersects(got, cfg.Audience) {
			return nil, fmt.Errorf("%w: audience %v not in %v", errUnauthorized, got, cfg.Audience)
		}
	}
	res := &jwtResult{Claims: map[string]string{}}
	for k, v := range claims {
		res.Claims[k] = claimString(v)
	}
	if s, ok := claims["scope"].(string); ok {
		res.Scopes = strings.Fields(s)
	} else if l, ok := claims["scp"].([]any); ok {
		for _, e := range l {
			if s, ok := e.(string); ok {
				res.Scopes = append(res.Scopes, s)
			}
		}
	}
	if len(routeScopes) > 0 && !intersects(res.Scopes, routeScopes) {
		return nil, fmt.Errorf("%w: token scopes %v lack one of %v", errForbidden, res.Scopes, routeScopes)
	}
	return res, nil
}

func intersects(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

func decodeJWT(tok string) (map[string]any, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("token is not a JWT (want header.payload.signature)")
	}
	var hdr map[string]any
	if err := decodeSegment(parts[0], &hdr); err != nil {
		return nil, fmt.Errorf("token header: %v", err)
	}
	var claims map[string]any
	if err := decodeSegment(parts[1], &claims); err != nil {
		return nil, fmt.Errorf("token payload: %v", err)
	}
	if claims == nil {
		return nil, errors.New("token payload is not a JSON object")
	}
	return claims, nil
}

func decodeSegment(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil {
		return err
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	return dec.Decode(v)
}

func numericClaim(v any) (int64, bool) {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, true
		}
		if f, err := x.Float64(); err == nil {
			return int64(f), true
		}
	case string:
		if i, err := strconv.ParseInt(x, 10, 64); err == nil {
			return i, true
		}
	}
	return 0, false
}

// claimString renders a claim the way API Gateway HTTP APIs put it in
// requestContext.authorizer.jwt.claims: strings as is, numbers and booleans
// as their JSON text, arrays as "[a b c]" and objects as JSON.
func claimString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = claimString(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case map[string]any:
		b, _ := json.Marshal(x) // sorted keys
		return string(b)
	}
	return fmt.Sprint(v)
}

// UnsignedJWT returns a JWT carrying claims with a dummy signature, for
// local requests and tests: the local authorizer does not verify
// signatures. Typical claims: sub, iss, aud, exp (Unix seconds), scope.
func UnsignedJWT(claims map[string]any) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(map[string]string{"alg": "none", "typ": "JWT"}) + "." + enc(claims) + ".bG9jYWw"
}

// devToken is the local token for subject dev-user that authorizer a
// accepts (its issuer and first audience) with scopes, valid for 24 hours
// from now: make event's requests and the storefront's calls carry it.
func devToken(a *samtemplate.Authorizer, scopes []string, now time.Time) string {
	claims := map[string]any{"sub": "dev-user", "exp": now.Add(24 * time.Hour).Unix(), "scope": strings.Join(scopes, " ")}
	if a.JWT != nil && a.JWT.Issuer != "" {
		claims["iss"] = a.JWT.Issuer
	}
	if a.JWT != nil && len(a.JWT.Audience) > 0 {
		claims["aud"] = a.JWT.Audience[0]
	}
	return UnsignedJWT(claims)
}

// DevToken is a local token for subject dev-user that the first JWT
// authorizer of the routes accepts, with every scope the routes ask for
// ("" when no route has one).
func (rt *Router) DevToken(now time.Time) string {
	var scopes []string
	var auth *Route
	for _, r := range rt.routes {
		if r.Authorizer == nil {
			continue
		}
		if auth == nil {
			auth = r
		}
		scopes = append(scopes, r.Event.HTTP.Scopes...)
	}
	if auth == nil {
		return ""
	}
	return devToken(auth.Authorizer, scopes, now)
}
