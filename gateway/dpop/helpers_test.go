package dpop_test

import (
	"encoding/json"

	"github.com/lestrrat-go/jwx/v2/jwk"
)

func jsonOf(k jwk.Key) (map[string]any, error) {
	b, err := json.Marshal(k)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}
