package push

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/google/go-containerregistry/pkg/authn"

	"github.com/hackforla/ctjdeploy/internal/awserr"
	"github.com/hackforla/ctjdeploy/internal/config"
	"github.com/hackforla/ctjdeploy/internal/report"
)

// ecrAPI is the part of the ECR API the pusher calls.
type ecrAPI interface {
	GetAuthorizationToken(ctx context.Context, in *ecr.GetAuthorizationTokenInput, opts ...func(*ecr.Options)) (*ecr.GetAuthorizationTokenOutput, error)
	DescribeRepositories(ctx context.Context, in *ecr.DescribeRepositoriesInput, opts ...func(*ecr.Options)) (*ecr.DescribeRepositoriesOutput, error)
}

// stsAPI is the part of the STS API RegistryFor calls.
type stsAPI interface {
	GetCallerIdentity(ctx context.Context, in *sts.GetCallerIdentityInput, opts ...func(*sts.Options)) (*sts.GetCallerIdentityOutput, error)
}

// RegistryFor returns the registry host of env: its `registry:` when set,
// else the account's ECR registry ACCOUNT.dkr.ecr.REGION.amazonaws.com, the
// account coming from STS GetCallerIdentity.
func RegistryFor(ctx context.Context, awsCfg aws.Config, env *config.Environment) (string, error) {
	if env.Registry != "" {
		return env.Registry, nil
	}
	return defaultRegistry(ctx, sts.NewFromConfig(awsCfg), env.Region)
}

func defaultRegistry(ctx context.Context, api stsAPI, region string) (string, error) {
	out, err := api.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", fmt.Errorf("finding the AWS account for the default ECR registry (sts:GetCallerIdentity): %w; check the AWS credentials, or set `registry:` in the config", err)
	}
	acct := aws.ToString(out.Account)
	if acct == "" {
		return "", errors.New("sts:GetCallerIdentity returned no account; set `registry:` in the config")
	}
	return fmt.Sprintf("%s.dkr.ecr.%s.amazonaws.com", acct, region), nil
}

// ecrAuth is an authn.Authenticator backed by ECR GetAuthorizationToken. The
// token lives only in this value's memory; it is registered with
// report.AddSecret so that no renderer can print it.
type ecrAuth struct {
	api ecrAPI

	mu      sync.Mutex
	cfg     *authn.AuthConfig
	expires time.Time
}

var _ authn.Authenticator = (*ecrAuth)(nil)

func (a *ecrAuth) Authorization() (*authn.AuthConfig, error) {
	return a.AuthorizationContext(context.Background())
}

// AuthorizationContext implements authn.ContextAuthenticator.
func (a *ecrAuth) AuthorizationContext(ctx context.Context) (*authn.AuthConfig, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cfg != nil && time.Now().Add(time.Minute).Before(a.expires) {
		c := *a.cfg
		return &c, nil
	}
	// RegistryIds is deprecated: a token opens every registry the
	// identity may use.
	out, err := a.api.GetAuthorizationToken(ctx, &ecr.GetAuthorizationTokenInput{})
	if err != nil {
		return nil, awserr.Wrap("getting registry credentials (ecr:GetAuthorizationToken)", err)
	}
	if len(out.AuthorizationData) == 0 {
		return nil, errors.New("ecr:GetAuthorizationToken returned no authorization data")
	}
	user, pass, exp, err := decodeToken(out.AuthorizationData[0])
	if err != nil {
		return nil, err
	}
	a.cfg = &authn.AuthConfig{Username: user, Password: pass}
	a.expires = exp
	c := *a.cfg
	return &c, nil
}

// decodeToken splits an ECR authorization token ("AWS:password", base64)
// and registers both forms as secrets.
func decodeToken(d ecrtypes.AuthorizationData) (user, pass string, exp time.Time, err error) {
	tok := aws.ToString(d.AuthorizationToken)
	report.AddSecret(tok)
	raw, err := base64.StdEncoding.DecodeString(tok)
	if err != nil {
		return "", "", time.Time{}, errors.New("ecr:GetAuthorizationToken returned a token that is not base64")
	}
	u, p, ok := strings.Cut(string(raw), ":")
	if !ok || u == "" || p == "" {
		return "", "", time.Time{}, errors.New("ecr:GetAuthorizationToken returned a token that is not USER:PASSWORD")
	}
	report.AddSecret(p)
	return u, p, tokenExpiry(time.Now(), d.ExpiresAt), nil
}

// tokenExpiry is when to fetch a new token: ECR tokens last 12 hours; an
// expiry less than 10 minutes away (clock skew, a test server) is taken as
// 10 minutes, so that a push never asks for a token per request.
func tokenExpiry(now time.Time, expiresAt *time.Time) time.Time {
	floor := now.Add(10 * time.Minute)
	if expiresAt == nil || expiresAt.Before(floor) {
		return floor
	}
	return *expiresAt
}

// Mutability of a repository's tags.
type mutability int

const (
	mutabilityUnknown mutability = iota
	mutable
	immutable
)

// describeRepository checks that the repository exists in ECR and reads its
// tag mutability. A denied DescribeRepositories is not fatal: the push will
// find out.
func describeRepository(ctx context.Context, api ecrAPI, registry, repo string) (mutability, error) {
	in := &ecr.DescribeRepositoriesInput{RepositoryNames: []string{repo}}
	if id := config.ECRRegistryID(registry); id != "" {
		in.RegistryId = aws.String(id)
	}
	out, err := api.DescribeRepositories(ctx, in)
	if err != nil {
		var nf *ecrtypes.RepositoryNotFoundException
		if errors.As(err, &nf) {
			return mutabilityUnknown, repoNotFound(registry, repo)
		}
		if awserr.IsAccessDenied(err) {
			return mutabilityUnknown, nil
		}
		return mutabilityUnknown, awserr.Wrap(fmt.Sprintf("describing ECR repository %s (ecr:DescribeRepositories)", repo), err)
	}
	for _, r := range out.Repositories {
		if aws.ToString(r.RepositoryName) != repo {
			continue
		}
		switch r.ImageTagMutability {
		case ecrtypes.ImageTagMutabilityImmutable:
			return immutable, nil
		case ecrtypes.ImageTagMutabilityMutable:
			return mutable, nil
		default: // *_WITH_EXCLUSION: depends on the tag; the registry decides
			return mutabilityUnknown, nil
		}
	}
	return mutabilityUnknown, repoNotFound(registry, repo)
}

func repoNotFound(registry, repo string) error {
	return fmt.Errorf("repository %s not found in registry %s: ECR does not create repositories on push; "+
		"the repository is owned by Terraform: create it there (aws_ecr_repository %q) and apply, or fix `repository:` in the config",
		repo, registry, repo)
}
