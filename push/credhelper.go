package push

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
)

// HelperName is the docker credential helper name ctjdeploy answers to: the
// docker CLI runs docker-credential-ctjdeploy, a symlink to the ctjdeploy
// binary in a private temporary folder, to read registry credentials for
// `docker build --cache-from` without any credential on disk.
const HelperName = "ctjdeploy"

// RegionEnv is the variable that tells the helper the ECR region.
const RegionEnv = "CTJDEPLOY_ECR_REGION"

// IsCredentialHelper reports whether this process was started as
// docker-credential-ctjdeploy.
func IsCredentialHelper() bool {
	return filepath.Base(os.Args[0]) == "docker-credential-"+HelperName
}

// RegistryEnv is the variable that tells the helper the registries it may
// answer for (comma-separated host[:port]).
const RegistryEnv = "CTJDEPLOY_ECR_REGISTRY"

// HelperEnv is the environment the helper needs (for build.WithCredentialHelper):
// the ECR region and the configured registries, the only hosts the helper
// answers with credentials. Pass the environment's registry: without one the
// helper answers any ECR or loopback registry (config.AllowedRegistry).
func HelperEnv(region string, registries ...string) []string {
	env := []string{RegionEnv + "=" + region}
	if len(registries) > 0 {
		env = append(env, RegistryEnv+"="+strings.Join(registries, ","))
	}
	return env
}

// notFound is the docker credential helper protocol's answer for "no
// credentials for this server" (docker-credential-helpers'
// ErrCredentialsNotFound): the docker CLI then goes on anonymously.
const notFound = "credentials not found in native keychain"

// RunCredentialHelper speaks the docker credential helper protocol: `get`
// reads a server URL on stdin and, for the configured registry only (see
// HelperEnv), prints {"Username","Secret"} fetched from
// ecr:GetAuthorizationToken; any other server gets "credentials not found"
// and no call to AWS. `store` and `erase` do nothing (nothing is stored);
// `list` prints {}. It returns the process exit code. Main calls it first
// when IsCredentialHelper().
func RunCredentialHelper(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	return runCredentialHelper(args, stdin, stdout, stderr, os.Getenv, func(ctx context.Context) (ecrAPI, error) {
		cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(os.Getenv(RegionEnv)))
		if err != nil {
			return nil, fmt.Errorf("AWS config: %w", err)
		}
		return ecr.NewFromConfig(cfg), nil
	})
}

func runCredentialHelper(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string, newAPI func(context.Context) (ecrAPI, error)) int {
	if len(args) < 1 {
		fmt.Fprintln(stderr, "usage: docker-credential-ctjdeploy get|store|erase|list")
		return 1
	}
	switch args[0] {
	case "store", "erase":
		_, _ = io.Copy(io.Discard, stdin)
		return 0
	case "list":
		fmt.Fprintln(stdout, "{}")
		return 0
	case "get":
	default:
		fmt.Fprintf(stderr, "docker-credential-ctjdeploy: unknown action %q\n", args[0])
		return 1
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintln(stderr, err)
		return 1
	}
	server := strings.TrimSpace(line)
	var allowed []string
	for _, r := range strings.Split(getenv(RegistryEnv), ",") {
		if r = strings.TrimSpace(r); r != "" {
			allowed = append(allowed, r)
		}
	}
	if !servesCredentials(server, allowed) {
		fmt.Fprintln(stdout, notFound)
		what := "an ECR or loopback registry"
		if len(allowed) > 0 {
			what = "the configured registry " + strings.Join(allowed, ", ")
		}
		fmt.Fprintf(stderr, "docker-credential-ctjdeploy: %q is not %s: no credentials given\n", server, what)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	api, err := newAPI(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "docker-credential-ctjdeploy: %v\n", err)
		return 1
	}
	a := &ecrAuth{api: api}
	ac, err := a.AuthorizationContext(ctx)
	if err != nil {
		// The docker CLI treats a failing helper as "no credentials".
		fmt.Fprintf(stderr, "docker-credential-ctjdeploy: %v\n", err)
		return 1
	}
	_ = json.NewEncoder(stdout).Encode(map[string]string{"ServerURL": server, "Username": ac.Username, "Secret": ac.Password})
	return 0
}
