package ecssim

// IAM on the stack: with a policy set (Options.Policy, SetPolicy, ecssim
// -policy FILE), every call that reaches ServeHTTP is authorized the way
// AWS's policy evaluation logic does for one identity-based policy ("Policy
// evaluation logic", IAM User Guide): an explicit Deny wins, otherwise an
// Allow is needed, otherwise the call is implicitly denied. A statement
// matches when its Action (or NotAction) matches the action, case
// insensitively with * and ? wildcards; its Resource (or NotResource)
// matches the resource ARN, case sensitively with * and ? wildcards; and
// every condition holds.
//
// The resource of each call is the ARN the Service Authorization Reference
// names for that action ("Actions, resources, and condition keys for Amazon
// Elastic Container Service", "... for Amazon Elastic Container Registry",
// "... for AWS Systems Manager", "... for Amazon CloudWatch Logs"), built
// from the request (resourcesFor):
//
//	ecs:DescribeServices, UpdateService,
//	    ListServiceDeployments            service/CLUSTER/SERVICE (ecs:cluster;
//	                                      UpdateService also ecs:task-definition)
//	ecs:DescribeServiceDeployments,
//	    StopServiceDeployment             service-deployment/CLUSTER/SERVICE/ID and
//	                                      the service/CLUSTER/SERVICE it belongs to
//	ecs:DescribeServiceRevisions          service-revision/CLUSTER/SERVICE/ID and
//	                                      its service
//	ecs:DescribeTasks                     task/CLUSTER/ID (ecs:cluster)
//	ecs:ListTasks                         * (ecs:cluster)
//	ecs:RegisterTaskDefinition            task-definition/FAMILY:* (aws:RequestTag/K,
//	                                      aws:TagKeys); with tags also
//	                                      ecs:TagResource (ecs:CreateAction =
//	                                      RegisterTaskDefinition), and
//	                                      iam:PassRole on executionRoleArn and
//	                                      taskRoleArn (iam:PassedToService =
//	                                      ecs-tasks.amazonaws.com)
//	ecs:TagResource                       resourceArn
//	ecs:DescribeTaskDefinition,
//	    ListTaskDefinitions               * (the reference lists no resource type)
//	ecr:GetAuthorizationToken             *
//	ecr:<any call with repositoryName(s)> repository/NAME in registryId's account
//	ssm:Get/Put/DeleteParameter(s), GetParameterHistory parameter/NAME (without the leading slash)
//	logs:GetLogEvents                     log-group:GROUP:log-stream:STREAM
//	logs:<call with logGroupName>         log-group:GROUP
//	sts:GetCallerIdentity                 never denied ("No permissions are
//	                                      required", GetCallerIdentity API reference)
//	iam:SimulatePrincipalPolicy           PolicySourceArn; then answered by the
//	                                      simulator from its own policy
//	iam:*, other sts:* (query protocol)   * (action only; the service is the
//	                                      signature's credential scope)
//	anything else                         * (action only)
//
// The new revision number of RegisterTaskDefinition is not known before the
// call, so its resource is task-definition/FAMILY:* (matched by a policy's
// task-definition/FAMILY:* or by a wider pattern). Policy variables
// (${aws:username}) and the global condition keys beyond aws:RequestTag and
// aws:TagKeys are not modelled. The registry's own traffic (docker
// distribution API: the ECR actions BatchGetImage, PutImage,
// InitiateLayerUpload ... behind a push or pull) does not pass ServeHTTP:
// RegistryProxy (iam_registry.go) evaluates it when a config names the
// proxy as its registry; ECR API calls made through the SDK pass here.
//
// A denied call gets the service's error: for the JSON protocols (ECS, ECR,
// SSM, CloudWatch Logs) HTTP 400 {"__type":"AccessDeniedException",
// "message":"User: P is not authorized to perform: A on resource: R because
// no identity-based policy allows the A action"} (the API references'
// "Common Errors": AccessDeniedException, HTTP Status Code 400; the ECS
// reference lists it on each action); for STS and IAM (query protocol) HTTP
// 403 with <ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>,
// as STS answers a denied AssumeRole (the code the SDK surfaces as
// "api error AccessDenied").

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
)

// DefaultPrincipal is the identity named in AccessDenied messages when
// Options.Principal is empty: moto's account, a CI role's session.
const DefaultPrincipal = "arn:aws:sts::123456789012:assumed-role/ctjdeploy-ci/ctjdeploy"

// simAccount is moto's default account, which owns every resource it creates.
const simAccount = "123456789012"

// Denial is one call the policy denied.
type Denial struct {
	Action   string
	Resource string
	Explicit bool // an explicit Deny, not the lack of an Allow
}

// iamState is the simulator's policy; its own lock keeps the model's lock
// out of the authorization path.
type iamState struct {
	mu        sync.Mutex
	policy    *policyDoc
	principal string
	denials   []Denial
}

// SetPolicy sets the identity-based policy every later call is evaluated
// against (a JSON policy document); nil or empty turns enforcement off.
func (s *Sim) SetPolicy(doc []byte) error {
	var p *policyDoc
	if len(bytes.TrimSpace(doc)) > 0 {
		var err error
		if p, err = parsePolicy(doc); err != nil {
			return err
		}
	}
	s.iam.mu.Lock()
	defer s.iam.mu.Unlock()
	s.iam.policy = p
	if s.iam.principal == "" {
		s.iam.principal = s.opts.Principal
	}
	if s.iam.principal == "" {
		s.iam.principal = DefaultPrincipal
	}
	return nil
}

// SetPolicyFile is SetPolicy with the document read from path.
func (s *Sim) SetPolicyFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("ecssim: policy: %w", err)
	}
	return s.SetPolicy(b)
}

// Denials returns the calls denied so far, in order.
func (s *Sim) Denials() []Denial {
	s.iam.mu.Lock()
	defer s.iam.mu.Unlock()
	return append([]Denial(nil), s.iam.denials...)
}

// authorize evaluates one call; it returns false when it answered the call
// itself: denied (the service's AccessDenied answer), or
// iam:SimulatePrincipalPolicy (simulatePrincipalPolicy; moto has none).
func (s *Sim) authorize(w http.ResponseWriter, r *http.Request, target string, body []byte) bool {
	s.iam.mu.Lock()
	p, principal := s.iam.policy, s.iam.principal
	s.iam.mu.Unlock()
	if p == nil && target != "" {
		return true // not enforced, and not a query-protocol call to answer
	}
	req := requestFor(r, target, body)
	simulate := req.query && req.service == "iam" && req.action == "SimulatePrincipalPolicy"
	if p == nil {
		if simulate {
			simulatePrincipalPolicy(w, body, nil)
			return false
		}
		return true
	}
	for _, c := range req.checks {
		explicit, ok := p.allows(c)
		if ok {
			continue
		}
		msg := s.deny(principal, c, explicit)
		if req.query {
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(http.StatusForbidden)
			var esc bytes.Buffer
			_ = xmlEscape(&esc, msg)
			ns := "https://sts.amazonaws.com/doc/2011-06-15/"
			if req.service == "iam" {
				ns = "https://iam.amazonaws.com/doc/2010-05-08/"
			}
			fmt.Fprintf(w, `<ErrorResponse xmlns="%s"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>%s</Message></Error><RequestId>ecssim-iam</RequestId></ErrorResponse>`, ns, esc.String())
			return false
		}
		out, _ := json.Marshal(map[string]string{"__type": "AccessDeniedException", "message": msg})
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write(out)
		return false
	}
	if simulate {
		simulatePrincipalPolicy(w, body, p)
		return false
	}
	return true
}

// deny records the denial of c and returns what AWS says of it ("User: ...
// is not authorized to perform: ACTION on resource: ARN because ...").
func (s *Sim) deny(principal string, c check, explicit bool) string {
	s.iam.mu.Lock()
	s.iam.denials = append(s.iam.denials, Denial{Action: c.action, Resource: c.resource, Explicit: explicit})
	s.iam.mu.Unlock()
	why := "because no identity-based policy allows the " + c.action + " action"
	if explicit {
		why = "with an explicit deny in an identity-based policy"
	}
	return fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s %s", principal, c.action, c.resource, why)
}

func xmlEscape(b *bytes.Buffer, s string) error {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")
	_, err := b.WriteString(r.Replace(s))
	return err
}

// check is one authorization the call needs: an action on a resource, with
// the request's condition keys.
type check struct {
	action   string
	resource string
	keys     map[string][]string
}

type authRequest struct {
	checks  []check
	query   bool   // query protocol (STS, IAM): XML errors
	service string // of a query protocol call: sts, iam
	action  string // of a query protocol call: its Action
}

// scopeRE reads the region and service of a SigV4 credential scope
// (Credential=AKID/DATE/REGION/SERVICE/aws4_request).
var scopeRE = regexp.MustCompile(`Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/`)

// requestFor derives the authorizations a call needs (see the package's
// table above).
func requestFor(r *http.Request, target string, body []byte) authRequest {
	region, signedFor := "us-west-2", "sts"
	if m := scopeRE.FindStringSubmatch(r.Header.Get("Authorization")); m != nil {
		region, signedFor = m[1], m[2]
	}
	arn := func(svc, acct, res string) string {
		return fmt.Sprintf("arn:aws:%s:%s:%s:%s", svc, region, acct, res)
	}
	if target == "" { // query protocol: STS, IAM (the signature's scope names which)
		v, _ := url.ParseQuery(string(body))
		a := v.Get("Action")
		if a == "" {
			a = r.URL.Query().Get("Action")
		}
		if signedFor == "sts" && a == "GetCallerIdentity" {
			return authRequest{query: true, service: signedFor, action: a}
		}
		res := "*"
		if src := v.Get("PolicySourceArn"); signedFor == "iam" && a == "SimulatePrincipalPolicy" && src != "" {
			res = src // the user, group or role simulated
		}
		return authRequest{query: true, service: signedFor, action: a, checks: []check{{action: signedFor + ":" + a, resource: res}}}
	}
	svcName, op, _ := strings.Cut(target, ".")
	var in map[string]any
	_ = json.Unmarshal(body, &in)
	str := func(k string) string { s, _ := in[k].(string); return s }
	strs := func(k string) []string {
		var out []string
		if l, ok := in[k].([]any); ok {
			for _, x := range l {
				if s, ok := x.(string); ok {
					out = append(out, s)
				}
			}
		}
		return out
	}
	one := func(action, res string, keys map[string][]string) authRequest {
		return authRequest{checks: []check{{action: action, resource: res, keys: keys}}}
	}
	switch {
	case strings.HasPrefix(svcName, "AmazonEC2ContainerService"):
		action := "ecs:" + op
		cluster := str("cluster")
		if cluster == "" {
			cluster = "default"
		}
		cluster = nameAfter(cluster, "cluster/")
		clusterARN := arn("ecs", simAccount, "cluster/"+cluster)
		ck := map[string][]string{"ecs:cluster": {clusterARN}}
		svcARN := func(s string) string {
			if strings.HasPrefix(s, "arn:") {
				return s
			}
			return arn("ecs", simAccount, "service/"+cluster+"/"+s)
		}
		tdARN := func(td string) string {
			if strings.HasPrefix(td, "arn:") {
				return td
			}
			return arn("ecs", simAccount, "task-definition/"+td)
		}
		// parent: arn:...:service-deployment/C/S/ID → its service and cluster.
		parent := func(a string) (string, map[string][]string) {
			i := strings.Index(a, ":service-")
			if i < 0 {
				return "", nil
			}
			_, rest, _ := strings.Cut(a[i+1:], "/")
			parts := strings.Split(rest, "/")
			if len(parts) < 3 {
				return "", nil
			}
			return a[:i+1] + "service/" + parts[0] + "/" + parts[1], map[string][]string{"ecs:cluster": {a[:i+1] + "cluster/" + parts[0]}}
		}
		switch op {
		case "DescribeServices":
			var out authRequest
			for _, s := range strs("services") {
				out.checks = append(out.checks, check{action, svcARN(s), ck})
			}
			if len(out.checks) == 0 {
				out.checks = []check{{action, "*", ck}}
			}
			return out
		case "UpdateService":
			keys := map[string][]string{"ecs:cluster": {clusterARN}}
			if td := str("taskDefinition"); td != "" {
				keys["ecs:task-definition"] = []string{tdARN(td)}
			}
			return one(action, svcARN(str("service")), keys)
		case "ListServiceDeployments":
			return one(action, svcARN(str("service")), ck)
		case "DescribeServiceDeployments", "StopServiceDeployment", "DescribeServiceRevisions":
			arns := strs("serviceDeploymentArns")
			if op == "StopServiceDeployment" {
				arns = []string{str("serviceDeploymentArn")}
			}
			if op == "DescribeServiceRevisions" {
				arns = strs("serviceRevisionArns")
			}
			var out authRequest
			for _, a := range arns {
				svc, keys := parent(a)
				out.checks = append(out.checks, check{action, a, keys})
				if svc != "" {
					out.checks = append(out.checks, check{action, svc, keys})
				}
			}
			if len(out.checks) == 0 {
				out.checks = []check{{action, "*", nil}}
			}
			return out
		case "DescribeTasks":
			var out authRequest
			for _, t := range strs("tasks") {
				if !strings.HasPrefix(t, "arn:") {
					t = arn("ecs", simAccount, "task/"+cluster+"/"+t)
				}
				out.checks = append(out.checks, check{action, t, ck})
			}
			if len(out.checks) == 0 {
				out.checks = []check{{action, "*", ck}}
			}
			return out
		case "ListTasks":
			return one(action, "*", ck)
		case "RegisterTaskDefinition":
			res := arn("ecs", simAccount, "task-definition/"+str("family")+":*")
			keys := map[string][]string{}
			var tagKeys []string
			if l, ok := in["tags"].([]any); ok {
				for _, x := range l {
					m, _ := x.(map[string]any)
					k, _ := m["key"].(string)
					v, _ := m["value"].(string)
					keys["aws:RequestTag/"+k] = []string{v}
					tagKeys = append(tagKeys, k)
				}
			}
			if len(tagKeys) > 0 {
				keys["aws:TagKeys"] = tagKeys
			}
			out := one(action, res, keys)
			if len(tagKeys) > 0 {
				tk := map[string][]string{"ecs:CreateAction": {"RegisterTaskDefinition"}, "aws:TagKeys": tagKeys}
				for k, v := range keys {
					tk[k] = v
				}
				out.checks = append(out.checks, check{"ecs:TagResource", res, tk})
			}
			// RegisterTaskDefinition with roles passes them to ECS tasks:
			// AWS authorizes iam:PassRole on each ("Grant a user permissions
			// to pass a role to an AWS service", IAM User Guide; the ECS
			// reference lists iam:PassRole as a dependent action).
			for _, k := range []string{"executionRoleArn", "taskRoleArn"} {
				if role := str(k); role != "" {
					if !strings.HasPrefix(role, "arn:") {
						role = "arn:aws:iam::" + simAccount + ":role/" + role
					}
					out.checks = append(out.checks, check{"iam:PassRole", role, map[string][]string{"iam:PassedToService": {"ecs-tasks.amazonaws.com"}}})
				}
			}
			return out
		case "TagResource", "UntagResource", "ListTagsForResource":
			return one(action, str("resourceArn"), nil)
		}
		return one(action, "*", nil)
	case strings.HasPrefix(svcName, "AmazonEC2ContainerRegistry"):
		action := "ecr:" + op
		acct := str("registryId")
		if acct == "" {
			acct = simAccount
		}
		repos := strs("repositoryNames")
		if n := str("repositoryName"); n != "" {
			repos = append(repos, n)
		}
		if op == "GetAuthorizationToken" || len(repos) == 0 {
			return one(action, "*", nil)
		}
		var out authRequest
		for _, n := range repos {
			out.checks = append(out.checks, check{action, arn("ecr", acct, "repository/"+n), nil})
		}
		return out
	case svcName == "AmazonSSM":
		action := "ssm:" + op
		names := strs("Names")
		if n := str("Name"); n != "" {
			names = append(names, n)
		}
		if len(names) == 0 {
			return one(action, "*", nil)
		}
		var out authRequest
		for _, n := range names {
			out.checks = append(out.checks, check{action, arn("ssm", simAccount, "parameter/"+strings.TrimPrefix(n, "/")), nil})
		}
		return out
	case strings.HasPrefix(svcName, "Logs_"):
		action := "logs:" + op
		g := str("logGroupName")
		if g == "" {
			return one(action, "*", nil)
		}
		if st := str("logStreamName"); st != "" && op == "GetLogEvents" {
			return one(action, arn("logs", simAccount, "log-group:"+g+":log-stream:"+st), nil)
		}
		return one(action, arn("logs", simAccount, "log-group:"+g), nil)
	}
	return one(strings.ToLower(svcName)+":"+op, "*", nil)
}

// nameAfter returns the name in an ARN after marker (cluster/NAME), or s.
func nameAfter(s, marker string) string {
	if i := strings.Index(s, ":"+marker); i >= 0 && strings.HasPrefix(s, "arn:") {
		return s[i+1+len(marker):]
	}
	return s
}

// policyDoc is a parsed identity-based policy.
type policyDoc struct {
	statements []statement
}

type statement struct {
	sid                      string
	deny                     bool
	action, notAction        []string
	resource, notResource    []string
	conditions               []condition
	hasAction, hasNotAction  bool
	hasResource, hasNotResrc bool
}

type condition struct {
	op     string // StringEquals, ArnLike, ...
	key    string
	values []string
}

// stringList decodes a policy element that is a string or a list of them.
func stringList(raw json.RawMessage) ([]string, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var one any
	if err := json.Unmarshal(raw, &one); err != nil {
		return nil, err
	}
	switch v := one.(type) {
	case string:
		return []string{v}, nil
	case bool:
		return []string{fmt.Sprint(v)}, nil
	case []any:
		var out []string
		for _, x := range v {
			switch x := x.(type) {
			case string:
				out = append(out, x)
			case bool, float64:
				out = append(out, fmt.Sprint(x))
			default:
				return nil, fmt.Errorf("%v is not a string", x)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s is neither a string nor a list of strings", raw)
}

func parsePolicy(doc []byte) (*policyDoc, error) {
	var raw struct {
		Statement json.RawMessage
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, fmt.Errorf("ecssim: policy is not JSON: %w", err)
	}
	var stmts []map[string]json.RawMessage
	if err := json.Unmarshal(raw.Statement, &stmts); err != nil {
		var one map[string]json.RawMessage
		if err2 := json.Unmarshal(raw.Statement, &one); err2 != nil {
			return nil, fmt.Errorf("ecssim: policy Statement: %w", err)
		}
		stmts = []map[string]json.RawMessage{one}
	}
	p := &policyDoc{}
	for i, m := range stmts {
		var st statement
		var effect string
		_ = json.Unmarshal(m["Effect"], &effect)
		_ = json.Unmarshal(m["Sid"], &st.sid)
		switch effect {
		case "Allow":
		case "Deny":
			st.deny = true
		default:
			return nil, fmt.Errorf("ecssim: policy statement %d: Effect %q", i, effect)
		}
		var err error
		for _, f := range []struct {
			key string
			dst *[]string
			has *bool
		}{{"Action", &st.action, &st.hasAction}, {"NotAction", &st.notAction, &st.hasNotAction},
			{"Resource", &st.resource, &st.hasResource}, {"NotResource", &st.notResource, &st.hasNotResrc}} {
			if r, ok := m[f.key]; ok {
				*f.has = true
				if *f.dst, err = stringList(r); err != nil {
					return nil, fmt.Errorf("ecssim: policy statement %d %s: %w", i, f.key, err)
				}
			}
		}
		if st.hasAction == st.hasNotAction || st.hasResource == st.hasNotResrc {
			return nil, fmt.Errorf("ecssim: policy statement %d: needs one of Action/NotAction and one of Resource/NotResource", i)
		}
		if c, ok := m["Condition"]; ok {
			var ops map[string]map[string]json.RawMessage
			if err := json.Unmarshal(c, &ops); err != nil {
				return nil, fmt.Errorf("ecssim: policy statement %d Condition: %w", i, err)
			}
			for op, keys := range ops {
				if !knownOperator(op) {
					return nil, fmt.Errorf("ecssim: policy statement %d: condition operator %s is not modelled", i, op)
				}
				for k, v := range keys {
					vals, err := stringList(v)
					if err != nil {
						return nil, fmt.Errorf("ecssim: policy statement %d Condition %s %s: %w", i, op, k, err)
					}
					st.conditions = append(st.conditions, condition{op: op, key: k, values: vals})
				}
			}
		}
		p.statements = append(p.statements, st)
	}
	return p, nil
}

var baseOperators = map[string]bool{
	"StringEquals": true, "StringNotEquals": true, "StringEqualsIgnoreCase": true, "StringNotEqualsIgnoreCase": true,
	"StringLike": true, "StringNotLike": true, "ArnEquals": true, "ArnLike": true, "ArnNotEquals": true, "ArnNotLike": true,
	"Bool": true, "Null": true,
}

func splitOperator(op string) (set, base string, ifExists bool) {
	if s, rest, ok := strings.Cut(op, ":"); ok {
		set, op = s, rest
	}
	base, ifExists = strings.CutSuffix(op, "IfExists")
	return set, base, ifExists
}

func knownOperator(op string) bool {
	set, base, _ := splitOperator(op)
	return baseOperators[base] && (set == "" || set == "ForAnyValue" || set == "ForAllValues")
}

// allows evaluates c: ok when an Allow matches and no Deny does; explicit
// when a Deny matched.
func (p *policyDoc) allows(c check) (explicit, ok bool) {
	allowed := false
	for _, st := range p.statements {
		if !st.matches(c) {
			continue
		}
		if st.deny {
			return true, false
		}
		allowed = true
	}
	return false, allowed
}

func (st statement) matches(c check) bool {
	if st.hasAction && !anyGlob(st.action, c.action, true) {
		return false
	}
	if st.hasNotAction && anyGlob(st.notAction, c.action, true) {
		return false
	}
	if st.hasResource && !anyGlob(st.resource, c.resource, false) {
		return false
	}
	if st.hasNotResrc && anyGlob(st.notResource, c.resource, false) {
		return false
	}
	for _, cond := range st.conditions {
		if !cond.holds(c.keys) {
			return false
		}
	}
	return true
}

func anyGlob(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		if fold {
			if glob(strings.ToLower(p), strings.ToLower(s)) {
				return true
			}
		} else if glob(p, s) {
			return true
		}
	}
	return false
}

// glob matches s against p, where * is any run of characters (including
// none, across : and /) and ? any one character.
func glob(p, s string) bool {
	px, sx := 0, 0
	star, match := -1, 0
	for sx < len(s) {
		switch {
		case px < len(p) && (p[px] == '?' || p[px] == s[sx]):
			px++
			sx++
		case px < len(p) && p[px] == '*':
			star, match = px, sx
			px++
		case star >= 0:
			px = star + 1
			match++
			sx = match
		default:
			return false
		}
	}
	for px < len(p) && p[px] == '*' {
		px++
	}
	return px == len(p)
}

// holds evaluates one condition against the request's keys ("IAM JSON
// policy elements: Condition operators"): a missing key fails a positive
// operator, satisfies a negated one and any ...IfExists; a multivalued key
// needs ForAnyValue (one value matches) or ForAllValues (every value does).
func (c condition) holds(keys map[string][]string) bool {
	set, base, ifExists := splitOperator(c.op)
	var vals []string
	present := false
	for k, v := range keys { // condition key names are case-insensitive
		if strings.EqualFold(k, c.key) {
			vals, present = v, true
		}
	}
	if base == "Null" {
		want := len(c.values) > 0 && strings.EqualFold(c.values[0], "true")
		return want == !present
	}
	negated := strings.Contains(base, "Not")
	if !present {
		if set == "ForAllValues" {
			return true
		}
		return ifExists || negated
	}
	one := func(v string) bool {
		for _, want := range c.values {
			var m bool
			switch strings.Replace(base, "Not", "", 1) {
			case "StringEquals", "ArnEquals", "Bool":
				m = strings.EqualFold(base, "Bool") && strings.EqualFold(v, want) || v == want
			case "StringEqualsIgnoreCase":
				m = strings.EqualFold(v, want)
			case "StringLike", "ArnLike":
				m = glob(want, v)
			}
			if m {
				return true
			}
		}
		return false
	}
	match := func(v string) bool {
		if negated {
			return !one(v)
		}
		return one(v)
	}
	switch set {
	case "ForAllValues":
		for _, v := range vals {
			if !match(v) {
				return false
			}
		}
		return true
	default: // single-valued keys, ForAnyValue
		for _, v := range vals {
			if match(v) {
				return true
			}
		}
		return false
	}
}
