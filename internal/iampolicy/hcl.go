package iampolicy

import (
	"fmt"
	"sort"
	"strings"
)

// HCL renders the document as a Terraform data source, statement for
// statement, for a CI role's policy in Terraform (the incubator's
// terraform/cicd.tf):
//
//	data "aws_iam_policy_document" "NAME" {
//	  statement {
//	    sid       = "..."
//	    effect    = "Allow"
//	    actions   = [...]
//	    resources = [...]
//	    condition {
//	      test     = "StringEquals"
//	      variable = "..."
//	      values   = [...]
//	    }
//	  }
//	}
//
// (Terraform AWS provider, data source aws_iam_policy_document: statement,
// condition test/variable/values.) Use it as
// data.aws_iam_policy_document.NAME.json.
func (d Document) HCL(name string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "data \"aws_iam_policy_document\" %s {\n", hclString(name))
	for i, s := range d.Statement {
		if i > 0 {
			b.WriteString("\n")
		}
		b.WriteString("  statement {\n")
		fmt.Fprintf(&b, "    sid       = %s\n", hclString(s.Sid))
		fmt.Fprintf(&b, "    effect    = %s\n", hclString(s.Effect))
		fmt.Fprintf(&b, "    actions   = %s\n", hclList(s.Action, 4))
		fmt.Fprintf(&b, "    resources = %s\n", hclList(s.Resource, 4))
		for _, op := range sortedKeys(s.Condition) {
			for _, key := range sortedKeys(s.Condition[op]) {
				b.WriteString("\n    condition {\n")
				fmt.Fprintf(&b, "      test     = %s\n", hclString(op))
				fmt.Fprintf(&b, "      variable = %s\n", hclString(key))
				fmt.Fprintf(&b, "      values   = %s\n", hclList(ConditionValues(s.Condition[op][key]), 6))
				b.WriteString("    }\n")
			}
		}
		b.WriteString("  }\n")
	}
	b.WriteString("}\n")
	return []byte(b.String())
}

// ConditionValues returns a condition's value (a string, a list of strings,
// a boolean) as the list of strings Terraform's values takes.
func ConditionValues(v any) []string {
	switch v := v.(type) {
	case []string:
		return v
	case []any:
		var out []string
		for _, x := range v {
			out = append(out, fmt.Sprint(x))
		}
		return out
	}
	return []string{fmt.Sprint(v)}
}

func sortedKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// hclString quotes s as an HCL string literal: JSON-like escapes, and the
// template sequences ${ and %{ doubled so Terraform keeps them literal
// (an IAM policy variable ${aws:username} stays as written).
func hclString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			b.WriteString(`\"`)
		case c == '\\':
			b.WriteString(`\\`)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case c < 0x20:
			fmt.Fprintf(&b, `\u%04x`, c)
		case (c == '$' || c == '%') && i+1 < len(s) && s[i+1] == '{':
			b.WriteByte(c)
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// hclList renders a list of strings, one a line when there are several.
func hclList(items []string, indent int) string {
	if len(items) <= 1 {
		if len(items) == 0 {
			return "[]"
		}
		return "[" + hclString(items[0]) + "]"
	}
	pad := strings.Repeat(" ", indent+2)
	var b strings.Builder
	b.WriteString("[\n")
	for _, it := range items {
		b.WriteString(pad + hclString(it) + ",\n")
	}
	b.WriteString(strings.Repeat(" ", indent) + "]")
	return b.String()
}
