package config

import (
	"slices"
	"time"
)

// Reload says when the gateway reads its configuration again while it
// runs. A reload can also be asked for with SIGHUP or POST /admin/reload.
type Reload struct {
	// WatchInterval is how often the configuration file, and every file
	// it names that a reload reads (see [Config.ReadFiles]), is checked
	// for a change (content hash; modification time and size first for a
	// file over 1 MiB); a change reloads, and a reload refused for a
	// reason that may pass (keys not fetched yet, a CA file not whole yet)
	// is tried again. Default 2s when the key is
	// absent; at least 100ms. An explicit "0s" turns watching off. Read it
	// with [Reload.WatchEvery].
	WatchInterval *Duration `json:"watch_interval,omitempty"`
}

// defaultWatchInterval is the default of reload.watch_interval.
const defaultWatchInterval = 2 * time.Second

// WatchEvery returns how often the files are checked: WatchInterval, two
// seconds when it is unset, and zero, meaning never, when it is
// explicitly "0s".
func (r Reload) WatchEvery() time.Duration {
	if r.WatchInterval == nil {
		return defaultWatchInterval
	}
	return r.WatchInterval.Std()
}

// ReadFiles returns the files the configuration names that are read when
// the gateway loads it, at start and at each reload, and only then: the
// buf images, the backends' CA files and the CA files of the Redis servers
// in use. An issuer's key set file is not among them: the verifier reads
// it again when it changes, as the listener's certificate, key and client
// CAs and a backend's client certificate are read again at handshakes.
func (c *Config) ReadFiles() []string {
	files := slices.Clone(c.Descriptors.Images)
	for _, r := range c.Routes {
		files = appendFile(files, r.CAFile)
	}
	if c.RateLimit.Store == "redis" || c.DPoP.IsEnabled() && c.DPoP.Replay.Store == "redis" {
		files = appendFile(files, c.RateLimit.Redis.TLSCAFile)
	}
	if c.Revocation.Source == "redis" && len(c.Issuers) > 0 {
		files = appendFile(files, c.Revocation.Redis.TLSCAFile)
	}
	return files
}

// appendFile appends name to files unless it is empty or already there.
func appendFile(files []string, name string) []string {
	if name == "" || slices.Contains(files, name) {
		return files
	}
	return append(files, name)
}

func (r Route) validateReflection(v *validator, path string) {
	switch r.Descriptors {
	case "image":
		if r.ReflectionRefresh != 0 {
			v.add(path+".reflection_refresh", "is set, but descriptors is not reflection")
		}
		if r.ReflectionAllowPublic {
			v.add(path+".reflection_allow_public", "is set, but descriptors is not reflection")
		}
	case DescriptorsReflection:
		v.atLeast(path+".reflection_refresh", r.ReflectionRefresh, 100*time.Millisecond)
	default:
		v.add(path+".descriptors", "%q is not image or reflection", r.Descriptors)
	}
}

func (r Reload) validate(v *validator) {
	if w := r.WatchInterval; w != nil && *w != 0 {
		v.atLeast("reload.watch_interval", *w, 100*time.Millisecond)
	}
}
