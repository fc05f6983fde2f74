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

// HelperEnv is the environment the helper needs (for build.WithCredentialHelper).
func HelperEnv(region string) []string { return []string{RegionEnv + "=" + region} }

// RunCredentialHelper speaks the docker credential helper protocol: `get`
// reads a server URL on stdin and prints {"Username","Secret"} fetched from
// ecr:GetAuthorizationToken; `store` and `erase` do nothing (nothing is
// stored); `list` prints {}. It returns the process exit code. Main calls
// it first when IsCredentialHelper().
func RunCredentialHelper(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
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
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintln(stderr, err)
		return 1
	}
	server := strings.TrimSpace(line)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(os.Getenv(RegionEnv)))
	if err != nil {
		fmt.Fprintf(stderr, "docker-credential-ctjdeploy: AWS config: %v\n", err)
		return 1
	}
	a := &ecrAuth{api: ecr.NewFromConfig(cfg)}
	ac, err := a.AuthorizationContext(ctx)
	if err != nil {
		// The docker CLI treats a failing helper as "no credentials".
		fmt.Fprintf(stderr, "docker-credential-ctjdeploy: %v\n", err)
		return 1
	}
	_ = json.NewEncoder(stdout).Encode(map[string]string{"ServerURL": server, "Username": ac.Username, "Secret": ac.Password})
	return 0
}
