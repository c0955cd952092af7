package config

import (
	"net/url"
	"time"
)

// Introspection makes an issuer opaque: its tokens are introspected (RFC
// 7662) at the issuer rather than verified with keys. The gateway sends
// it every token that is not a compact JWS, and every JWT whose iss names
// it. One issuer at most may be opaque.
type Introspection struct {
	// URL is the introspection endpoint, such as
	// "https://auth.example.com/oauth2/introspect".
	URL string `json:"url"`
	// ClientID is the gateway's client at the issuer, allowed to
	// introspect (client_secret_basic).
	ClientID string `json:"client_id"`
	// ClientSecretEnv names the environment variable holding the client's
	// secret.
	ClientSecretEnv string `json:"client_secret_env"`
	// CacheMax bounds how long an answer for an active token is reused
	// (never past its exp): the longest a revocation at the issuer goes
	// unnoticed. Default 60s; at most 1h.
	CacheMax Duration `json:"cache_max,omitempty"`
	// Timeout bounds one introspection request. Default 5s.
	Timeout Duration `json:"timeout,omitempty"`

	// ClientSecret is read from ClientSecretEnv. Never in the file.
	ClientSecret string `json:"-"`
}

func (in *Introspection) setDefaults() {
	setDuration(&in.CacheMax, 60*time.Second)
	setDuration(&in.Timeout, 5*time.Second)
}

func (in *Introspection) validate(v *validator, path string) {
	if u, err := url.Parse(in.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(path+".url", "%q is not an http(s) URL", in.URL)
	}
	if in.ClientID == "" {
		v.add(path+".client_id", "is required")
	}
	switch secret, ok := v.lookupEnv(in.ClientSecretEnv); {
	case in.ClientSecretEnv == "":
		v.add(path+".client_secret_env", "is required")
	case !ok || secret == "":
		v.add(path+".client_secret_env", "environment variable %s is not set", in.ClientSecretEnv)
	default:
		in.ClientSecret = secret
	}
	v.positive(path+".cache_max", in.CacheMax)
	if in.CacheMax.Std() > time.Hour {
		v.add(path+".cache_max", "%s is above 1h", in.CacheMax)
	}
	v.positive(path+".timeout", in.Timeout)
}
