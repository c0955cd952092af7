package dpop

import "strings"

// normalizeURL returns the http or https URL s without query and fragment,
// normalized as RFC 3986 §6.2.2 and §6.2.3 say: scheme and host in lower
// case, percent-encodings in upper case and decoded where they encode an
// unreserved character, dot segments removed, the default port dropped
// and an empty path made "/". It reports false for anything else, such as
// a URL with user information or a relative one.
func normalizeURL(s string) (string, bool) {
	if i := strings.IndexAny(s, "?#"); i >= 0 {
		s = s[:i]
	}
	i := strings.Index(s, "://")
	if i <= 0 {
		return "", false
	}
	scheme := strings.ToLower(s[:i])
	if scheme != "https" && scheme != "http" {
		return "", false
	}
	rest := s[i+3:]
	authority, path := rest, ""
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		authority, path = rest[:j], rest[j:]
	}
	if authority == "" || strings.ContainsAny(authority, "@ %") {
		return "", false
	}
	host, port := authority, ""
	if j := strings.LastIndexByte(authority, ':'); j >= 0 && !strings.Contains(authority[j:], "]") {
		host, port = authority[:j], authority[j+1:]
	}
	for _, c := range port {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	if host == "" {
		return "", false
	}
	port = strings.TrimLeft(port, "0")
	if scheme == "https" && port == "443" || scheme == "http" && port == "80" {
		port = ""
	}
	var b strings.Builder
	b.Grow(len(s))
	b.WriteString(scheme)
	b.WriteString("://")
	b.WriteString(strings.ToLower(host))
	if port != "" {
		b.WriteByte(':')
		b.WriteString(port)
	}
	p, ok := normalizePath(path)
	if !ok {
		return "", false
	}
	b.WriteString(p)
	return b.String(), true
}

// normalizePath normalizes percent-encoding and removes dot segments
// (RFC 3986 §5.2.4) of an absolute path.
func normalizePath(path string) (string, bool) {
	if path == "" {
		return "/", true
	}
	var enc strings.Builder
	enc.Grow(len(path))
	for i := 0; i < len(path); i++ {
		c := path[i]
		if c == '%' {
			if i+2 >= len(path) || !isHex(path[i+1]) || !isHex(path[i+2]) {
				return "", false
			}
			v := unhex(path[i+1])<<4 | unhex(path[i+2])
			if isUnreserved(v) {
				enc.WriteByte(v)
			} else {
				enc.WriteByte('%')
				enc.WriteByte(upper(path[i+1]))
				enc.WriteByte(upper(path[i+2]))
			}
			i += 2
			continue
		}
		if c <= ' ' || c >= 0x7f {
			return "", false
		}
		enc.WriteByte(c)
	}
	return removeDots(enc.String()), true
}

// removeDots is RFC 3986 §5.2.4's remove_dot_segments of an absolute path.
func removeDots(in string) string {
	if !strings.Contains(in, ".") {
		return in
	}
	var out []string
	segs := strings.Split(in[1:], "/")
	for i, seg := range segs {
		last := i == len(segs)-1
		switch seg {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, seg)
		}
	}
	return "/" + strings.Join(out, "/")
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func upper(c byte) byte {
	if c >= 'a' && c <= 'f' {
		return c - 'a' + 'A'
	}
	return c
}

func isUnreserved(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
