package taskdef

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// DescribeOnlyKeys are the top-level keys DescribeTaskDefinition returns that
// RegisterTaskDefinition does not accept. Decode drops them.
var DescribeOnlyKeys = []string{
	"taskDefinitionArn", "revision", "status", "registeredAt", "registeredBy",
	"deregisteredAt", "deleteRequestedAt", "compatibilities", "requiresAttributes",
}

// unions maps the SDK's union interfaces to their members by JSON key. A
// union is written in ECS JSON as an object with exactly one key.
var unions = map[reflect.Type]map[string]reflect.Type{
	reflect.TypeFor[ecstypes.SharingStrategy](): {
		"nvidiaMps": reflect.TypeFor[ecstypes.SharingStrategyMemberNvidiaMps](),
	},
}

// jsonName is the ECS API member name of a Go field of the SDK: the field
// name with its first letter lowered (ContainerDefinitions →
// containerDefinitions).
func jsonName(field string) string {
	if field == "" {
		return ""
	}
	return strings.ToLower(field[:1]) + field[1:]
}

// Decode reads ECS API JSON (RegisterTaskDefinition's request, camelCase
// keys) strictly into the SDK's input type: describe-only keys are dropped,
// and an unknown key, a value of the wrong type or an invalid enum value is
// an error naming its JSON path (containerDefinitions[1].enviroment).
func Decode(data []byte) (*ecs.RegisterTaskDefinitionInput, error) {
	v, err := parseJSON(data)
	if err != nil {
		return nil, err
	}
	return decodeValue(v)
}

// parseJSON decodes one JSON document into generic values (numbers as
// json.Number) and rejects trailing data.
func parseJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, jsonError(data, err)
	}
	if dec.More() {
		off := dec.InputOffset()
		line, col := lineCol(data, off)
		return nil, fmt.Errorf("%d:%d: unexpected data after the JSON document", line, col)
	}
	return v, nil
}

// jsonError gives a JSON syntax or type error a line:column prefix.
func jsonError(data []byte, err error) error {
	var off int64 = -1
	switch e := err.(type) {
	case *json.SyntaxError:
		off = e.Offset
	case *json.UnmarshalTypeError:
		off = e.Offset
	}
	if err.Error() == "unexpected EOF" || err.Error() == "EOF" {
		off = int64(len(data))
	}
	if off < 0 {
		return fmt.Errorf("invalid JSON: %v", err)
	}
	line, col := lineCol(data, off)
	return fmt.Errorf("%d:%d: invalid JSON: %v", line, col, err)
}

func lineCol(data []byte, off int64) (int, int) {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

func decodeValue(v any) (*ecs.RegisterTaskDefinitionInput, error) {
	top, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("the task definition must be a JSON object, not %s", kindOf(v))
	}
	for k := range top {
		for _, d := range DescribeOnlyKeys {
			if strings.EqualFold(k, d) {
				delete(top, k)
			}
		}
	}
	in := new(ecs.RegisterTaskDefinitionInput)
	if err := decodeInto("", top, reflect.ValueOf(in).Elem()); err != nil {
		return nil, err
	}
	return in, nil
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func kindOf(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a bool"
	case json.Number:
		return "a number (" + v.String() + ")"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// decodeInto sets rv from the generic JSON value v; path names v for errors.
func decodeInto(path string, v any, rv reflect.Value) error {
	if v == nil {
		return nil // null: leave unset
	}
	t := rv.Type()
	switch t.Kind() {
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		if err := decodeInto(path, v, p.Elem()); err != nil {
			return err
		}
		rv.Set(p)
		return nil
	case reflect.Interface:
		return decodeUnion(path, v, rv)
	case reflect.Struct:
		return decodeStruct(path, v, rv)
	case reflect.Slice:
		return decodeSlice(path, v, rv)
	case reflect.Map:
		return decodeMap(path, v, rv)
	}
	return decodeScalar(path, v, rv)
}

// decodeUnion sets a union (an SDK interface type with one member per
// key) from an object with exactly one key.
func decodeUnion(path string, v any, rv reflect.Value) error {
	t := rv.Type()
	members, ok := unions[t]
	if !ok {
		return fmt.Errorf("%s: unsupported field type %s", path, t)
	}
	obj, ok := v.(map[string]any)
	if !ok || len(obj) != 1 {
		return fmt.Errorf("%s: want an object with exactly one of: %s", path, strings.Join(sortedKeys(members), ", "))
	}
	for k, mv := range obj {
		mt, ok := members[k]
		if !ok {
			return fmt.Errorf("%s: unknown field %q (want one of: %s)", join(path, k), k, strings.Join(sortedKeys(members), ", "))
		}
		m := reflect.New(mt)
		if err := decodeInto(join(path, k), mv, m.Elem().FieldByName("Value")); err != nil {
			return err
		}
		rv.Set(m)
	}
	return nil
}

// decodeStruct sets a struct from an object, its keys matched to the
// fields case-insensitively, each at most once.
func decodeStruct(path string, v any, rv reflect.Value) error {
	t := rv.Type()
	obj, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("%s: want an object, got %s", path, kindOf(v))
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	seen := map[int]string{}
	for _, k := range keys {
		fi := fieldIndex(t, k)
		if fi < 0 {
			return fmt.Errorf("%s: unknown field %q%s", join(path, k), k, suggest(t, k))
		}
		if prev, dup := seen[fi]; dup {
			return fmt.Errorf("%s: field given twice, as %q and %q", join(path, k), prev, k)
		}
		seen[fi] = k
		if err := decodeInto(join(path, k), obj[k], rv.Field(fi)); err != nil {
			return err
		}
	}
	return nil
}

// decodeSlice sets a slice from a list.
func decodeSlice(path string, v any, rv reflect.Value) error {
	t := rv.Type()
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("%s: want a list, got %s", path, kindOf(v))
	}
	s := reflect.MakeSlice(t, len(list), len(list))
	for i, e := range list {
		if err := decodeInto(fmt.Sprintf("%s[%d]", path, i), e, s.Index(i)); err != nil {
			return err
		}
	}
	rv.Set(s)
	return nil
}

// decodeMap sets a map with string keys from an object.
func decodeMap(path string, v any, rv reflect.Value) error {
	t := rv.Type()
	obj, ok := v.(map[string]any)
	if !ok || t.Key().Kind() != reflect.String {
		return fmt.Errorf("%s: want an object, got %s", path, kindOf(v))
	}
	m := reflect.MakeMapWithSize(t, len(obj))
	for k, e := range obj {
		ev := reflect.New(t.Elem()).Elem()
		if err := decodeInto(fmt.Sprintf("%s[%q]", path, k), e, ev); err != nil {
			return err
		}
		m.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), ev)
	}
	rv.Set(m)
	return nil
}

// decodeScalar sets a string (of an enum type: one of its values), a bool
// or a number.
func decodeScalar(path string, v any, rv reflect.Value) error {
	t := rv.Type()
	switch t.Kind() {
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s: want a string, got %s", path, kindOf(v))
		}
		if allowed := enumValues(t); allowed != nil && !contains(allowed, s) {
			return fmt.Errorf("%s: %q is not one of: %s", path, s, strings.Join(allowed, ", "))
		}
		rv.SetString(s)
		return nil
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("%s: want true or false, got %s", path, kindOf(v))
		}
		rv.SetBool(b)
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("%s: want a number, got %s (write it without quotes)", path, kindOf(v))
		}
		i, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil || rv.OverflowInt(i) {
			return fmt.Errorf("%s: want a whole number that fits %s, got %s", path, t.Kind(), n)
		}
		rv.SetInt(i)
		return nil
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			return fmt.Errorf("%s: want a number, got %s", path, kindOf(v))
		}
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) {
			return fmt.Errorf("%s: invalid number %s", path, n)
		}
		rv.SetFloat(f)
		return nil
	}
	return fmt.Errorf("%s: unsupported field type %s", path, t)
}

// fieldIndex finds the exported field of struct type t named key (ECS JSON
// name, matched case-insensitively), or -1.
func fieldIndex(t reflect.Type, key string) int {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.IsExported() && !f.Anonymous && strings.EqualFold(f.Name, key) {
			return i
		}
	}
	return -1
}

// suggest names the closest known field, for typos.
func suggest(t reflect.Type, key string) string {
	best, bestD := "", 4
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() || f.Anonymous {
			continue
		}
		if d := distance(strings.ToLower(key), strings.ToLower(f.Name)); d < bestD {
			best, bestD = jsonName(f.Name), d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// enumValues returns the allowed values of a smithy enum type (a string type
// with a Values method), or nil for a plain string.
func enumValues(t reflect.Type) []string {
	if t.Kind() != reflect.String || t.PkgPath() == "" {
		return nil
	}
	m, ok := t.MethodByName("Values")
	if !ok || m.Type.NumIn() != 1 || m.Type.NumOut() != 1 {
		return nil
	}
	out := m.Func.Call([]reflect.Value{reflect.Zero(t)})[0]
	vals := make([]string, out.Len())
	for i := range vals {
		vals[i] = out.Index(i).String()
	}
	return vals
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Marshal writes in as ECS API JSON (camelCase keys, sorted, indented by two
// spaces), the shape `aws ecs register-task-definition --cli-input-json`
// accepts. Unset fields are left out.
func Marshal(in *ecs.RegisterTaskDefinitionInput) ([]byte, error) {
	if in == nil {
		return []byte("{}\n"), nil
	}
	v, _ := encode(reflect.ValueOf(in).Elem(), false)
	if v == nil {
		v = map[string]any{}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// encode turns an SDK value into generic JSON values. ok is false for an
// unset value: a nil pointer, slice, map or interface, an empty list or
// map, or the zero value of a non-pointer scalar (the SDK's "unset").
func encode(rv reflect.Value, viaPtr bool) (any, bool) {
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			return nil, false
		}
		return encode(rv.Elem(), true)
	case reflect.Interface:
		if rv.IsNil() {
			return nil, false
		}
		e := rv.Elem()
		for k, mt := range unions[rv.Type()] {
			if e.Type() == reflect.PointerTo(mt) {
				val, _ := encode(e.Elem().FieldByName("Value"), true)
				return map[string]any{k: val}, true
			}
		}
		return nil, false
	case reflect.Struct:
		obj := map[string]any{}
		t := rv.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() || f.Anonymous {
				continue
			}
			if v, ok := encode(rv.Field(i), false); ok {
				obj[jsonName(f.Name)] = v
			}
		}
		return obj, viaPtr || len(obj) > 0
	case reflect.Slice:
		if rv.Len() == 0 {
			return nil, false
		}
		list := make([]any, rv.Len())
		for i := range list {
			v, ok := encode(rv.Index(i), true)
			if !ok {
				v = nil
			}
			list[i] = v
		}
		return list, true
	case reflect.Map:
		if rv.Len() == 0 {
			return nil, false
		}
		obj := map[string]any{}
		iter := rv.MapRange()
		for iter.Next() {
			v, _ := encode(iter.Value(), true)
			obj[iter.Key().String()] = v
		}
		return obj, true
	case reflect.String:
		return rv.String(), viaPtr || rv.String() != ""
	case reflect.Bool:
		return rv.Bool(), viaPtr || rv.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return json.Number(strconv.FormatInt(rv.Int(), 10)), viaPtr || rv.Int() != 0
	case reflect.Float32, reflect.Float64:
		return json.Number(strconv.FormatFloat(rv.Float(), 'g', -1, 64)), viaPtr || rv.Float() != 0
	}
	return nil, false
}

// FromLive converts a live task definition (DescribeTaskDefinition) into the
// RegisterTaskDefinition input it corresponds to. Describe-only fields are
// dropped; tags are not part of a TaskDefinition (DescribeTaskDefinition
// returns them beside it) and stay nil, as does the deprecated
// inferenceAccelerators (no longer available in ECS).
func FromLive(td *ecstypes.TaskDefinition) *ecs.RegisterTaskDefinitionInput {
	if td == nil {
		return nil
	}
	return &ecs.RegisterTaskDefinitionInput{
		ContainerDefinitions:          td.ContainerDefinitions,
		Family:                        td.Family,
		Cpu:                           td.Cpu,
		EnableFaultInjection:          td.EnableFaultInjection,
		EphemeralStorage:              td.EphemeralStorage,
		ExecutionRoleArn:              td.ExecutionRoleArn,
		IpcMode:                       td.IpcMode,
		Memory:                        td.Memory,
		NetworkMode:                   td.NetworkMode,
		PidMode:                       td.PidMode,
		PlacementConstraints:          td.PlacementConstraints,
		ProxyConfiguration:            td.ProxyConfiguration,
		RequiresCompatibilities:       td.RequiresCompatibilities,
		RuntimePlatform:               td.RuntimePlatform,
		TaskRoleArn:                   td.TaskRoleArn,
		TrustedExecutionConfiguration: td.TrustedExecutionConfiguration,
		Volumes:                       td.Volumes,
	}
}
