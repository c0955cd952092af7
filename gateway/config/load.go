package config

import (
	"fmt"
	"os"
)

// Load reads, completes and validates the configuration file at path.
// Environment variables named by *_env fields supply secrets. Mistakes in
// the file are reported together as an [*Error].
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse is [Load] on data already read; name labels errors and lookupEnv
// supplies environment variables.
func Parse(name string, data []byte, lookupEnv func(string) (string, bool)) (*Config, error) {
	r := newReport()
	cfg := new(Config)
	if decode(data, cfg, r) {
		cfg.setDefaults()
		cfg.validate(&validator{report: r, lookupEnv: lookupEnv})
	}
	if len(r.mistakes) > 0 {
		sortMistakes(r.mistakes)
		return nil, &Error{File: name, Mistakes: r.mistakes}
	}
	return cfg, nil
}
