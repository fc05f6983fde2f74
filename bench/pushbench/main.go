// Command pushbench drives ctjdeploy's build and push packages for
// bench/push.sh. It is not part of ctjdeploy's interface.
//
//	pushbench push -registry R -tags T1,T2 [-create] [-cache DIR] IMAGE=REPOSITORY...
//	pushbench build -name N -context C -dockerfile D -tag T [-cache-from REF] [-registry R]
//
// Each prints one JSON line with what it measured. Started as
// docker-credential-ctjdeploy (a symlink) it is the credential helper.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	ecrtypes "github.com/aws/aws-sdk-go-v2/service/ecr/types"

	"github.com/hackforla/ctjdeploy/build"
	"github.com/hackforla/ctjdeploy/internal/report"
	"github.com/hackforla/ctjdeploy/push"
)

func main() {
	if push.IsCredentialHelper() {
		os.Exit(push.RunCredentialHelper(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: pushbench push|build ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "push":
		err = pushCmd(os.Args[2:])
	case "build":
		err = buildCmd(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "pushbench:", report.Mask(err.Error()))
		os.Exit(1)
	}
}

func awsConfig(ctx context.Context) (aws.Config, error) {
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = "us-west-2"
	}
	return config.LoadDefaultConfig(ctx, config.WithRegion(region))
}

func pushCmd(args []string) error {
	fs := flag.NewFlagSet("push", flag.ExitOnError)
	registry := fs.String("registry", "127.0.0.1:5055", "registry host")
	tags := fs.String("tags", "bench", "comma-separated tags")
	create := fs.Bool("create", false, "create the ECR repositories first")
	cache := fs.String("cache", "", "blob digest cache folder (empty: none)")
	_ = fs.Parse(args)
	ctx := context.Background()
	cfg, err := awsConfig(ctx)
	if err != nil {
		return err
	}
	p, err := push.New(ctx, cfg, push.WithCacheDir(*cache))
	if err != nil {
		return err
	}
	defer p.Close()
	type job struct{ img, repo string }
	var jobs []job
	for _, a := range fs.Args() {
		img, repo, ok := strings.Cut(a, "=")
		if !ok {
			return fmt.Errorf("want IMAGE=REPOSITORY, got %q", a)
		}
		jobs = append(jobs, job{img, repo})
		if *create {
			_, err := ecr.NewFromConfig(cfg).CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String(repo)})
			var exists *ecrtypes.RepositoryAlreadyExistsException
			if err != nil && !errors.As(err, &exists) {
				return err
			}
		}
	}
	t0 := time.Now()
	res := make([]push.Result, len(jobs))
	errs := make([]error, len(jobs))
	done := make(chan int)
	for i, j := range jobs {
		go func() {
			res[i], errs[i] = p.Push(ctx, build.Image{Name: j.img, LocalRef: j.img}, push.Target{Registry: *registry, Repository: j.repo, Tags: strings.Split(*tags, ",")})
			done <- i
		}()
	}
	for range jobs {
		<-done
	}
	secs := time.Since(t0).Seconds()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var up int64
	for _, r := range res {
		up += r.UploadedBytes
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"seconds": secs, "uploaded_bytes": up})
}

func buildCmd(args []string) error {
	fs := flag.NewFlagSet("build", flag.ExitOnError)
	name := fs.String("name", "app", "image name")
	dir := fs.String("context", ".", "build context")
	dockerfile := fs.String("dockerfile", "Dockerfile", "Dockerfile")
	tag := fs.String("tag", "", "local tag")
	cacheFrom := fs.String("cache-from", "", "registry image to use as cache")
	registry := fs.String("registry", "127.0.0.1:5055", "registry host of -cache-from (credentials from ECR)")
	verbose := fs.Bool("v", false, "print the build output on stderr")
	_ = fs.Parse(args)
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cached := 0
	rep := report.Func(func(e report.Event) {
		if e.Kind == report.Line {
			if strings.HasSuffix(e.Message, " CACHED") {
				cached++
			}
			if *verbose {
				fmt.Fprintln(os.Stderr, report.Mask(e.Message))
			}
		}
	})
	opts := []build.Option{build.WithReporter(rep)}
	spec := build.Spec{Name: *name, Context: *dir, Dockerfile: *dockerfile, Tag: *tag}
	if *cacheFrom != "" {
		region := os.Getenv("AWS_REGION")
		if region == "" {
			region = "us-west-2"
		}
		opts = append(opts, build.WithCredentialHelper(exe, push.HelperName, []string{*registry}, push.HelperEnv(region)...))
		spec.CacheFrom = []string{*cacheFrom}
	}
	d, err := build.NewDocker(opts...)
	if err != nil {
		return err
	}
	t0 := time.Now()
	img, err := d.Build(context.Background(), spec)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"seconds": time.Since(t0).Seconds(), "id": img.ID, "cached_steps": cached})
}
