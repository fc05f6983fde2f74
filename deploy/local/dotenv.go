package local

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

var dotenvKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]*$`)

// ParseDotenv reads a dotenv file: one KEY=VALUE a line; blank lines and
// lines starting with # are skipped; an `export ` prefix is allowed; a
// value in double quotes may hold \n, \t, \" and \\ escapes and spans no
// line; a value in single quotes is taken as is; an unquoted value ends at
// " #" (a comment) and is trimmed. name is the file, for errors, which
// never show a value.
func ParseDotenv(name string, data []byte) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	ln := 0
	for sc.Scan() {
		ln++
		line := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "\ufeff"))
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimSpace(strings.TrimPrefix(line, "export "))
		k, v, ok := strings.Cut(line, "=")
		k = strings.TrimSpace(k)
		if !ok || !dotenvKey.MatchString(k) {
			return nil, fmt.Errorf("%s line %d: not KEY=VALUE (a name of letters, digits and _, then =)", name, ln)
		}
		v = strings.TrimSpace(v)
		switch {
		case strings.HasPrefix(v, `"`):
			s, rest, err := unquoteDouble(v[1:])
			if err != nil {
				return nil, fmt.Errorf("%s line %d (%s): %v", name, ln, k, err)
			}
			if r := strings.TrimSpace(rest); r != "" && !strings.HasPrefix(r, "#") {
				return nil, fmt.Errorf("%s line %d (%s): text after the closing quote", name, ln, k)
			}
			v = s
		case strings.HasPrefix(v, "'"):
			end := strings.IndexByte(v[1:], '\'')
			if end < 0 {
				return nil, fmt.Errorf("%s line %d (%s): no closing single quote", name, ln, k)
			}
			if r := strings.TrimSpace(v[end+2:]); r != "" && !strings.HasPrefix(r, "#") {
				return nil, fmt.Errorf("%s line %d (%s): text after the closing quote", name, ln, k)
			}
			v = v[1 : end+1]
		default:
			if i := strings.Index(v, " #"); i >= 0 {
				v = strings.TrimSpace(v[:i])
			}
		}
		out[k] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return out, nil
}

func unquoteDouble(s string) (string, string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '"':
			return b.String(), s[i+1:], nil
		case '\\':
			if i+1 >= len(s) {
				return "", "", fmt.Errorf("a backslash ends the value")
			}
			i++
			switch s[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			default:
				b.WriteByte(s[i])
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", fmt.Errorf("no closing double quote")
}
