package config

import "net/url"

// RouteExchange lets a route accept the tokens of an external issuer: the
// gateway exchanges each, once, at the bundled issuer's token endpoint
// (RFC 8693 token exchange) and decides and forwards the internal token it
// gets, so that backends only ever see internal tokens.
type RouteExchange struct {
	// Issuer is the iss of the external tokens the route accepts.
	Issuer string `json:"issuer"`
	// TokenURL is the token endpoint that exchanges them, such as
	// "https://auth.example.com/oauth2/token".
	TokenURL string `json:"token_url"`
	// ClientID is the gateway's client there, registered with
	// exchange: true (client_secret_basic).
	ClientID string `json:"client_id"`
	// ClientSecretEnv names the environment variable holding its secret.
	ClientSecretEnv string `json:"client_secret_env"`

	// ClientSecret is read from ClientSecretEnv. Never in the file.
	ClientSecret string `json:"-"`
}

func (x *RouteExchange) validate(v *validator, path string) {
	if x == nil {
		return
	}
	if x.Issuer == "" {
		v.add(path+".issuer", "is required: the iss of the external tokens")
	}
	if u, err := url.Parse(x.TokenURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(path+".token_url", "%q is not an http(s) URL", x.TokenURL)
	}
	if x.ClientID == "" {
		v.add(path+".client_id", "is required")
	}
	switch secret, ok := v.lookupEnv(x.ClientSecretEnv); {
	case x.ClientSecretEnv == "":
		v.add(path+".client_secret_env", "is required")
	case !ok || secret == "":
		v.add(path+".client_secret_env", "environment variable %s is not set", x.ClientSecretEnv)
	default:
		x.ClientSecret = secret
	}
}
