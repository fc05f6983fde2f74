package ecssim

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// simulatePrincipalPolicy answers iam:SimulatePrincipalPolicy ("IAM API
// Reference: SimulatePrincipalPolicy") from the simulator's policy, which
// stands for the policy of every principal (PolicySourceArn is not looked
// up): for each of ActionNames and each of ResourceArns (default "*"), one
// EvaluationResults member with EvalActionName, EvalResourceName,
// EvalDecision (allowed, explicitDeny, implicitDeny) and
// MissingContextValues (the condition keys of statements that match the
// action and resource but that ContextEntries do not give). Without a
// policy (IAM not enforced: the stack allows everything) every decision is
// allowed. Like AWS, a condition on a key the caller does not pass in
// ContextEntries does not hold.
func simulatePrincipalPolicy(w http.ResponseWriter, body []byte, p *policyDoc) {
	v, _ := url.ParseQuery(string(body))
	actions := members(v, "ActionNames")
	resources := members(v, "ResourceArns")
	if len(resources) == 0 {
		resources = []string{"*"}
	}
	keys := map[string][]string{}
	for i := 1; ; i++ {
		pre := "ContextEntries.member." + strconv.Itoa(i) + "."
		name := v.Get(pre + "ContextKeyName")
		if name == "" {
			break
		}
		keys[name] = members(v, pre+"ContextKeyValues")
	}
	var b bytes.Buffer
	b.WriteString(`<SimulatePrincipalPolicyResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><SimulatePrincipalPolicyResult><IsTruncated>false</IsTruncated><EvaluationResults>`)
	for _, a := range actions {
		for _, res := range resources {
			decision := "allowed"
			var missing []string
			if p != nil {
				explicit, ok := p.allows(check{action: a, resource: res, keys: keys})
				switch {
				case explicit:
					decision = "explicitDeny"
				case !ok:
					decision = "implicitDeny"
				}
				missing = p.missingKeys(a, res, keys)
			}
			b.WriteString("<member><EvalActionName>")
			_ = xmlEscape(&b, a)
			b.WriteString("</EvalActionName><EvalResourceName>")
			_ = xmlEscape(&b, res)
			fmt.Fprintf(&b, "</EvalResourceName><EvalDecision>%s</EvalDecision><MatchedStatements/><MissingContextValues>", decision)
			for _, k := range missing {
				b.WriteString("<member>")
				_ = xmlEscape(&b, k)
				b.WriteString("</member>")
			}
			b.WriteString("</MissingContextValues></member>")
		}
	}
	b.WriteString(`</EvaluationResults></SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>ecssim-iam</RequestId></ResponseMetadata></SimulatePrincipalPolicyResponse>`)
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b.Bytes())
}

// members reads a query-protocol list: NAME.member.1, NAME.member.2, ...
func members(v url.Values, name string) []string {
	var out []string
	for i := 1; ; i++ {
		x, ok := v[name+".member."+strconv.Itoa(i)]
		if !ok || len(x) == 0 {
			return out
		}
		out = append(out, x[0])
	}
}

// missingKeys lists the condition keys of the statements matching action
// and resource that keys does not give, sorted.
func (p *policyDoc) missingKeys(action, resource string, keys map[string][]string) []string {
	seen := map[string]bool{}
	for _, st := range p.statements {
		probe := st
		probe.conditions = nil
		if !probe.matches(check{action: action, resource: resource}) {
			continue
		}
		for _, c := range st.conditions {
			given := false
			for k := range keys { // condition key names are case-insensitive
				given = given || strings.EqualFold(k, c.key)
			}
			if !given {
				seen[c.key] = true
			}
		}
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
