package main

import (
	"os"
	"testing"
)

// runMainEnv makes the test binary run the portcullis command itself, so
// that tests can start it as a child process and signal it.
const runMainEnv = "PORTCULLIS_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}
