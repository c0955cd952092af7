package config_test

import (
	"strings"
	"testing"
)

// TestReloadSettingsMistakes: the reload section and a route's reflection
// settings are checked like every other key.
func TestReloadSettingsMistakes(t *testing.T) {
	t.Parallel()
	got := parseMistakes(t, `routes:
  - {service: a.B, backend: "http://b:1", descriptors: reflect}
  - {service: c.D, backend: "http://d:1", reflection_refresh: 5s, reflection_allow_public: true}
  - {service: e.F, backend: "http://f:1", descriptors: reflection, reflection_refresh: 1ms}
reload: {watch_interval: 10ms}
`)
	var lines []string
	for _, m := range got {
		lines = append(lines, m.String())
	}
	want := []string{
		`2:56: routes[0].descriptors: "reflect" is not image or reflection`,
		`3:63: routes[1].reflection_refresh: is set, but descriptors is not reflection`,
		`3:92: routes[1].reflection_allow_public: is set, but descriptors is not reflection`,
		`4:88: routes[2].reflection_refresh: 1ms is less than 100ms`,
		`5:26: reload.watch_interval: 10ms is less than 100ms`,
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("mistakes:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}
