package iampolicy

import (
	"reflect"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// parseHCLPolicy reads back what HCL printed, with HCL's own parser, into a
// Document: the data source's labels, and each statement's attributes and
// condition blocks evaluated as HCL evaluates them.
func parseHCLPolicy(t *testing.T, src []byte) (labels []string, d Document) {
	t.Helper()
	f, diags := hclsyntax.ParseConfig(src, "policy.tf", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatalf("not HCL: %v\n%s", diags, src)
	}
	body := f.Body.(*hclsyntax.Body)
	if len(body.Blocks) != 1 || body.Blocks[0].Type != "data" || len(body.Attributes) != 0 {
		t.Fatalf("want one data block, got %d blocks, %d attributes", len(body.Blocks), len(body.Attributes))
	}
	data := body.Blocks[0]
	str := func(b *hclsyntax.Body, name string) string {
		a, ok := b.Attributes[name]
		if !ok {
			t.Fatalf("no %s", name)
		}
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() || v.Type() != cty.String {
			t.Fatalf("%s: %v (%s)", name, diags, v.Type().FriendlyName())
		}
		return v.AsString()
	}
	list := func(b *hclsyntax.Body, name string) []string {
		a, ok := b.Attributes[name]
		if !ok {
			t.Fatalf("no %s", name)
		}
		v, diags := a.Expr.Value(nil)
		if diags.HasErrors() || !v.Type().IsTupleType() {
			t.Fatalf("%s: %v", name, diags)
		}
		var out []string
		for _, e := range v.AsValueSlice() {
			out = append(out, e.AsString())
		}
		return out
	}
	for _, sb := range data.Body.Blocks {
		if sb.Type != "statement" {
			t.Fatalf("unexpected block %s", sb.Type)
		}
		s := Statement{Sid: str(sb.Body, "sid"), Effect: str(sb.Body, "effect"),
			Action: list(sb.Body, "actions"), Resource: list(sb.Body, "resources")}
		if len(sb.Body.Attributes) != 4 {
			t.Errorf("statement %s: %d attributes, want sid, effect, actions, resources", s.Sid, len(sb.Body.Attributes))
		}
		for _, cb := range sb.Body.Blocks {
			if cb.Type != "condition" {
				t.Fatalf("unexpected block %s", cb.Type)
			}
			if s.Condition == nil {
				s.Condition = map[string]map[string]any{}
			}
			test := str(cb.Body, "test")
			if s.Condition[test] == nil {
				s.Condition[test] = map[string]any{}
			}
			s.Condition[test][str(cb.Body, "variable")] = list(cb.Body, "values")
		}
		d.Statement = append(d.Statement, s)
	}
	return data.Labels, d
}

// normalized turns every condition value into a list of strings, as the
// HCL form has them.
func normalized(d Document) Document {
	out := Document{}
	for _, s := range d.Statement {
		if s.Condition != nil {
			c := map[string]map[string]any{}
			for op, kv := range s.Condition {
				c[op] = map[string]any{}
				for k, v := range kv {
					c[op][k] = ConditionValues(v)
				}
			}
			s.Condition = c
		}
		out.Statement = append(out.Statement, s)
	}
	return out
}

func TestHCLMatchesJSONStatementForStatement(t *testing.T) {
	d := Policy(exampleEnv(t), "123456789012", "civic-tech-jobs-fullstack-stage", []string{
		"arn:aws:iam::123456789012:role/ctj-stage-task", "arn:aws:iam::123456789012:role/ctj-stage-execution",
	}, "/ecs/civic-tech-jobs-fullstack-stage")
	labels, got := parseHCLPolicy(t, d.HCL("ctjdeploy_stage"))
	if want := []string{"aws_iam_policy_document", "ctjdeploy_stage"}; !reflect.DeepEqual(labels, want) {
		t.Errorf("labels %v, want %v", labels, want)
	}
	if len(got.Statement) != len(d.Statement) || len(d.Statement) < 10 {
		t.Fatalf("%d statements in HCL, %d in JSON", len(got.Statement), len(d.Statement))
	}
	want := normalized(d)
	for i := range want.Statement {
		if !reflect.DeepEqual(got.Statement[i], want.Statement[i]) {
			t.Errorf("statement %d:\nHCL  %+v\nJSON %+v", i, got.Statement[i], want.Statement[i])
		}
	}
}

// TestHCLKeepsTemplateSequencesLiteral: an IAM policy variable, quotes and
// backslashes come back from HCL exactly as in the JSON.
func TestHCLKeepsTemplateSequencesLiteral(t *testing.T) {
	d := Document{Statement: []Statement{{Sid: "S", Effect: "Deny", Action: []string{"s3:GetObject"},
		Resource:  []string{"arn:aws:s3:::b/${aws:username}/*", `arn:aws:s3:::b/"q"\%{x}`},
		Condition: map[string]map[string]any{"Bool": {"aws:SecureTransport": false}, "StringLike": {"k": []string{"a*", "b?"}}}}}}
	_, got := parseHCLPolicy(t, d.HCL("x"))
	if want := normalized(d); !reflect.DeepEqual(got, want) {
		t.Errorf("HCL round trip:\n got %+v\nwant %+v\n%s", got, want, d.HCL("x"))
	}
}
