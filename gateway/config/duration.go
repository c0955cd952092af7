package config

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Duration is a time.Duration written as a Go duration string, such as
// "1.5s", "2m" or "1h30m".
type Duration time.Duration

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats the duration as [time.Duration.String] does, without
// zero minutes and seconds after larger units: "1h", "1m30s", "500ms".
func (d Duration) String() string {
	s := time.Duration(d).String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration such as \"30s\", got %s", b)
	}
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + d.String() + `"`), nil
}

// parseDuration reads a Go duration and, for a near miss such as
// "1 minute" or "2d", says how to write it.
func parseDuration(s string) (time.Duration, error) {
	v, err := time.ParseDuration(s)
	if err == nil {
		return v, nil
	}
	msg := fmt.Sprintf("want a duration such as \"30s\", got %q", s)
	if fix := durationFix(s); fix != "" {
		msg += fmt.Sprintf("; did you mean %q?", fix)
	}
	return 0, fmt.Errorf("%s", msg)
}

var spelledDuration = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Zµ]+)\s*$`)

// durationUnits maps spelt-out units to Go's, with a multiplier for days
// and weeks, which Go does not write.
var durationUnits = map[string]struct {
	unit  string
	times float64
}{
	"ns": {"ns", 1}, "nanosecond": {"ns", 1}, "nanoseconds": {"ns", 1},
	"us": {"us", 1}, "µs": {"us", 1}, "microsecond": {"us", 1}, "microseconds": {"us", 1},
	"ms": {"ms", 1}, "msec": {"ms", 1}, "msecs": {"ms", 1}, "millisecond": {"ms", 1}, "milliseconds": {"ms", 1},
	"s": {"s", 1}, "sec": {"s", 1}, "secs": {"s", 1}, "second": {"s", 1}, "seconds": {"s", 1},
	"m": {"m", 1}, "min": {"m", 1}, "mins": {"m", 1}, "minute": {"m", 1}, "minutes": {"m", 1},
	"h": {"h", 1}, "hr": {"h", 1}, "hrs": {"h", 1}, "hour": {"h", 1}, "hours": {"h", 1},
	"d": {"h", 24}, "day": {"h", 24}, "days": {"h", 24},
	"w": {"h", 168}, "week": {"h", 168}, "weeks": {"h", 168},
}

func durationFix(s string) string {
	m := spelledDuration.FindStringSubmatch(s)
	if m == nil {
		return ""
	}
	u, ok := durationUnits[strings.ToLower(m[2])]
	if !ok {
		return ""
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return ""
	}
	return strconv.FormatFloat(n*u.times, 'f', -1, 64) + u.unit
}
