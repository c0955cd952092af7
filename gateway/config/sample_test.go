package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/portcullis/portcullis/gateway/config"
)

// TestSampleParses loads the sample portcullis.yaml, in a directory holding
// the files it names, and wants no mistake.
func TestSampleParses(t *testing.T) {
	sample, err := filepath.Abs("portcullis.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"tls/cert.pem", "tls/key.pem", "tls/clients-ca.pem", "tls/orders-client.pem", "tls/orders-client-key.pem", "image.binpb", "keys/offline.jwks", "ca.pem"} {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir) // the sample's paths are relative to the working directory
	t.Setenv("PORTCULLIS_HMAC_SECRET", strings.Repeat("s", 32))
	t.Setenv("PORTCULLIS_INTROSPECTION_SECRET", "secret")
	t.Setenv("PORTCULLIS_EXCHANGE_SECRET", "secret")
	t.Setenv("PORTCULLIS_DPOP_NONCE_SECRET", strings.Repeat("n", 32))
	cfg, err := config.Load(sample)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Tokens.MaxAgeLimit().String() != "1h0m0s" || cfg.Issuers[1].RequiredType() != "" {
		t.Errorf("sample: max age %v, issuers[1] type %q", cfg.Tokens.MaxAgeLimit(), cfg.Issuers[1].RequiredType())
	}
}

// TestSampleHasEveryKey walks [config.Config] by reflection and wants every
// key it can hold to appear in the sample, so that the sample cannot fall
// behind the configuration.
func TestSampleHasEveryKey(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("portcullis.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	keysOf(reflect.TypeFor[config.Config](), "", want)
	got := map[string]bool{}
	keysIn(doc.Content[0], reflect.TypeFor[config.Config](), "", got)
	var missing []string
	for k := range want {
		if !got[k] {
			missing = append(missing, k)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("portcullis.yaml lacks %d keys:\n%s", len(missing), strings.Join(missing, "\n"))
	}
}

// yamlKey returns the key of a struct field, or "" for fields never read
// from the file.
func yamlKey(f reflect.StructField) string {
	key, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if key == "-" || !f.IsExported() {
		return ""
	}
	return key
}

var durationType = reflect.TypeFor[config.Duration]()

// keysOf adds the paths of every key type t can hold, with "[]" for list
// elements and "<name>" for map keys.
func keysOf(t reflect.Type, path string, keys map[string]bool) {
	switch t.Kind() {
	case reflect.Pointer:
		keysOf(t.Elem(), path, keys)
	case reflect.Slice:
		keysOf(t.Elem(), path+"[]", keys)
	case reflect.Map:
		keysOf(t.Elem(), path+".<name>", keys)
	case reflect.Struct:
		if t == durationType {
			return
		}
		for i := range t.NumField() {
			if key := yamlKey(t.Field(i)); key != "" {
				p := strings.TrimPrefix(path+"."+key, ".")
				keys[p] = true
				keysOf(t.Field(i).Type, p, keys)
			}
		}
	}
}

// keysIn adds the paths of the keys node n sets, read as type t.
func keysIn(n *yaml.Node, t reflect.Type, path string, keys map[string]bool) {
	switch t.Kind() {
	case reflect.Pointer:
		keysIn(n, t.Elem(), path, keys)
	case reflect.Slice:
		for _, e := range n.Content {
			keysIn(e, t.Elem(), path+"[]", keys)
		}
	case reflect.Map:
		for i := 1; i < len(n.Content); i += 2 {
			keysIn(n.Content[i], t.Elem(), path+".<name>", keys)
		}
	case reflect.Struct:
		if t == durationType || n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			for j := range t.NumField() {
				if key := yamlKey(t.Field(j)); key != "" && key == n.Content[i].Value {
					p := strings.TrimPrefix(path+"."+key, ".")
					keys[p] = true
					keysIn(n.Content[i+1], t.Field(j).Type, p, keys)
				}
			}
		}
	}
}
