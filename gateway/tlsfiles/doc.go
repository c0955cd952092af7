// Package tlsfiles holds TLS certificates, keys and CA bundles read from
// PEM files, and reads them again when the files change on disk, so that
// rotating a certificate needs no restart.
//
// A [KeyPair] serves a listener ([KeyPair.GetCertificate]) or a client
// ([KeyPair.GetClientCertificate]); a [Pool] holds CAs; [ServerConfig]
// builds a listener's tls.Config from both, with client certificate
// verification.
//
//	cert, err := tlsfiles.LoadKeyPair("tls/cert.pem", "tls/key.pem", tlsfiles.WithLogger(logger))
//	cas, err := tlsfiles.LoadPool([]string{"tls/clients-ca.pem"}, tlsfiles.WithLogger(logger))
//	cfg := tlsfiles.ServerConfig(&tls.Config{MinVersion: tls.VersionTLS12}, cert, cas, tls.VerifyClientCertIfGiven)
//	ln := tls.NewListener(tcp, cfg)
//
// The files are checked when they are used, in the handshake, at most once
// per check interval (one second by default): a stat of each file, and
// only when one changed, a read and a parse. This needs no goroutine to
// start or stop, costs a handshake an atomic load in all other cases, and
// picks up a change at the first handshake after it. A new file that does
// not parse, or a certificate that does not match its key, is logged and
// the previous one kept; it is tried again once a file changes again.
// New handshakes use the new files; connections already open go on with
// the old ones. Each new listener configuration has its own session
// ticket keys, so a session resumed after a rotation is one verified
// against the new files.
//
// Nothing here logs a key's content: errors name the files.
package tlsfiles
