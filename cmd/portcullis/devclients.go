package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/portcullis/portcullis/gateway/catalog"
	"github.com/portcullis/portcullis/services/issuer"
)

// demoClient is a client the development stack registers for its tour.
type demoClient struct {
	id, tier string
	grants   []string
}

var demoClients = []demoClient{
	{id: "reader", tier: "free", grants: []string{"LIC.READ_REQUIREMENTS", "ORD.READ"}},
	{id: "operator", tier: "pro", grants: []string{"LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS", "LIC.WRITE_ORDERS", "ORD.READ", "ORD.WRITE"}},
	// admin provisions clients through the issuer's administration
	// service; it holds every permission so that it may grant each.
	{id: "admin", grants: []string{"PORTCULLIS.READ_CLIENTS", "PORTCULLIS.MANAGE_CLIENTS", "LIC.READ_REQUIREMENTS", "LIC.READ_ORDERS", "LIC.WRITE_ORDERS", "ORD.READ", "ORD.WRITE"}},
}

// demoSecretsName is the file of the state folder in which "portcullis
// dev" keeps the demo clients' secrets, so that they stay the same from
// one start to the next. The registry next to it holds only their hashes.
const demoSecretsName = "demo-secrets.json"

// ensureDemoClients returns the secret of every demo client. It reuses the
// secret kept in secretsFile when the registry still has the client as
// defined and authenticates accepts the secret; otherwise it registers the
// client afresh and keeps its new secret. changed reports whether the
// registry changed.
func ensureDemoClients(registry, secretsFile string, cat *catalog.Catalog, authenticates func(id, secret string) bool) (secrets map[string]string, changed bool, err error) {
	kept, err := readSecrets(secretsFile)
	if err != nil {
		return nil, false, err
	}
	registered, err := issuer.ListClients(registry)
	if err != nil {
		return nil, false, err
	}
	secrets = map[string]string{}
	for _, c := range demoClients {
		if s, ok := kept[c.id]; ok && isRegistered(registered, c) && authenticates(c.id, s) {
			secrets[c.id] = s
			continue
		}
		if err := issuer.RevokeClient(registry, c.id); err != nil && !errors.Is(err, issuer.ErrUnknownClient) {
			return nil, false, err
		}
		s, err := issuer.AddClient(registry, cat, issuer.Client{ID: c.id, Grants: c.grants, Tier: c.tier})
		if err != nil {
			return nil, false, err
		}
		secrets[c.id], changed = s, true
	}
	if changed {
		err = writeSecrets(secretsFile, secrets)
	}
	return secrets, changed, err
}

// isRegistered reports whether the registry lists c with its grants and
// tier.
func isRegistered(registered []issuer.Client, c demoClient) bool {
	i := slices.IndexFunc(registered, func(r issuer.Client) bool { return r.ID == c.id })
	return i >= 0 && registered[i].Tier == c.tier && slices.Equal(registered[i].Grants, c.grants)
}

// tokenCheck returns a function that reports whether the issuer handler h
// grants a token to a client by id and secret, asking it in process.
func tokenCheck(h http.Handler) func(id, secret string) bool {
	return func(id, secret string) bool {
		r := httptest.NewRequest(http.MethodPost, issuer.TokenPath, strings.NewReader("grant_type=client_credentials"))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code == http.StatusOK
	}
}

// readSecrets reads the kept secrets; a missing or unreadable file keeps
// none, so that the clients are registered afresh.
func readSecrets(path string) (map[string]string, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var secrets map[string]string
	if json.Unmarshal(data, &secrets) != nil {
		return nil, nil
	}
	return secrets, nil
}

// writeSecrets writes the secrets to path, readable by its owner only,
// replacing the file at once.
func writeSecrets(path string, secrets map[string]string) error {
	data, err := json.MarshalIndent(secrets, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".demo-secrets-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(append(data, '\n'))
	if e := f.Close(); err == nil {
		err = e
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("keeping the demo secrets: %w", err)
	}
	return nil
}
