package taskdef

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/hackforla/ctjdeploy/internal/config"
)

// pos is a position in a decoded JSON document: the keys and list indexes
// from the top. Whether a position is a secret reference is decided on
// these steps, never on a path joined into text: a map key is one step
// whatever characters it holds, so `"dockerLabels": {"x.secrets[0].valueFrom":
// ...}` is a Docker label, not a secret reference.
type pos []step

type step struct {
	key   string
	index int
	isIdx bool
}

func (p pos) key(k string) pos { return append(p[:len(p):len(p)], step{key: k}) }
func (p pos) at(i int) pos     { return append(p[:len(p):len(p)], step{index: i, isIdx: true}) }

var plainKey = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// String writes the position for messages: containerDefinitions[0].secrets[1].valueFrom;
// a key that is not a plain word is quoted,
// dockerLabels["x.secrets[0].valueFrom"], so that a key never reads as a
// path.
func (p pos) String() string {
	var b strings.Builder
	for i, s := range p {
		switch {
		case s.isIdx:
			fmt.Fprintf(&b, "[%d]", s.index)
		case plainKey.MatchString(s.key):
			if i > 0 {
				b.WriteByte('.')
			}
			b.WriteString(s.key)
		default:
			b.WriteString("[" + strconv.Quote(s.key) + "]")
		}
	}
	if b.Len() == 0 {
		return "the document"
	}
	return b.String()
}

// secretRefShapes are the positions of a RegisterTaskDefinition request
// whose value names a secret that ECS fetches when the task starts, rather
// than holding it ("Pass sensitive data to an Amazon ECS container", Amazon
// ECS Developer Guide: secrets[].valueFrom, logConfiguration.secretOptions[].valueFrom;
// "Private registry authentication for tasks": repositoryCredentials.credentialsParameter).
// "#" is a list index; keys compare case-insensitively, as Decode does.
var secretRefShapes = [][]string{
	{"containerDefinitions", "#", "secrets", "#", "valueFrom"},
	{"containerDefinitions", "#", "logConfiguration", "secretOptions", "#", "valueFrom"},
	{"containerDefinitions", "#", "repositoryCredentials", "credentialsParameter"},
}

// isSecretRef reports whether p is the value of a secret reference.
func (p pos) isSecretRef() bool {
	for _, shape := range secretRefShapes {
		if len(shape) != len(p) {
			continue
		}
		ok := true
		for i, want := range shape {
			if want == "#" {
				ok = ok && p[i].isIdx
			} else {
				ok = ok && !p[i].isIdx && strings.EqualFold(p[i].key, want)
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// secretARN is the ARN of an SSM parameter or a Secrets Manager secret, in
// any partition (arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME,
// arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME[:json-key:stage:version]).
var secretARN = regexp.MustCompile(`^arn:aws(-[a-z]+)*:(ssm:[a-z0-9-]+:[0-9]{12}:parameter/|secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:)[\x21-\x7e]+$`)

// looksLikeRef reports whether s can name a secret in a secret reference:
// an SSM parameter or Secrets Manager ARN, or an SSM parameter name (ECS
// accepts the name of a parameter in the task's Region).
func looksLikeRef(s string) bool {
	return secretARN.MatchString(s) || config.SSMParameterName(s)
}
