package rollout

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/hackforla/ctjdeploy/internal/awserr"
	"github.com/hackforla/ctjdeploy/internal/ecsread"
	"github.com/hackforla/ctjdeploy/internal/report"
)

// Logs is the part of CloudWatch Logs a failure report reads;
// *cloudwatchlogs.Client satisfies it.
type Logs interface {
	GetLogEvents(ctx context.Context, in *cloudwatchlogs.GetLogEventsInput, opts ...func(*cloudwatchlogs.Options)) (*cloudwatchlogs.GetLogEventsOutput, error)
}

var _ Logs = (*cloudwatchlogs.Client)(nil)

// LogLines is how many of a stopped container's last log lines a failure
// report shows.
const LogLines = 30

// maxLogTasks is how many stopped tasks' logs a failure report reads.
const maxLogTasks = 2

// LogStream is where the awslogs driver writes a container of an ECS task:
// PREFIX/CONTAINER/TASK-ID ("Send Amazon ECS logs to CloudWatch": with
// awslogs-stream-prefix, the stream is prefix-name/container-name/ecs-task-id).
// "" when the container does not log with awslogs or has no prefix (the
// stream is then named by the Docker container id, which ECS does not
// report).
func LogStream(c ecstypes.ContainerDefinition, taskArn string) (group, stream string) {
	lc := c.LogConfiguration
	if lc == nil || lc.LogDriver != ecstypes.LogDriverAwslogs {
		return "", ""
	}
	group, prefix := lc.Options["awslogs-group"], lc.Options["awslogs-stream-prefix"]
	if group == "" || prefix == "" {
		return "", ""
	}
	return group, prefix + "/" + aws.ToString(c.Name) + "/" + ecsread.ID(taskArn)
}

// addLogs reads the last LogLines lines of each essential container of the
// first stopped tasks from CloudWatch Logs, masked. Best effort: a missing
// group, stream or permission leaves a note instead of lines.
func addLogs(ctx context.Context, api ECS, logs Logs, taskDef string, tasks []StoppedTask) {
	if logs == nil || len(tasks) == 0 {
		return
	}
	out, err := api.DescribeTaskDefinition(ctx, &ecs.DescribeTaskDefinitionInput{TaskDefinition: aws.String(taskDef)})
	if err != nil || out.TaskDefinition == nil {
		return
	}
	defs := map[string]ecstypes.ContainerDefinition{}
	for _, c := range out.TaskDefinition.ContainerDefinitions {
		defs[aws.ToString(c.Name)] = c
	}
	for i := range tasks {
		if i == maxLogTasks {
			break
		}
		// The containers that exited non-zero are the ones that tell why;
		// when ECS reports no such exit, every essential one.
		failed := false
		for _, c := range tasks[i].Containers {
			failed = failed || (c.ExitCode != nil && *c.ExitCode != 0)
		}
		for j := range tasks[i].Containers {
			sc := &tasks[i].Containers[j]
			def, ok := defs[sc.Name]
			if !ok || (def.Essential != nil && !*def.Essential) || (failed && (sc.ExitCode == nil || *sc.ExitCode == 0)) {
				continue
			}
			group, stream := LogStream(def, tasks[i].TaskArn)
			if group == "" {
				continue
			}
			sc.LogGroup, sc.LogStream = group, stream
			ev, err := logs.GetLogEvents(ctx, &cloudwatchlogs.GetLogEventsInput{
				LogGroupName: aws.String(group), LogStreamName: aws.String(stream),
				Limit: aws.Int32(LogLines), StartFromHead: aws.Bool(false),
			})
			if err != nil {
				sc.LogNote = report.Mask(awserr.Wrap("reading its log "+group+" "+stream+" (logs:GetLogEvents)", err).Error())
				continue
			}
			for _, e := range ev.Events {
				for _, line := range strings.Split(strings.TrimRight(aws.ToString(e.Message), "\n"), "\n") {
					sc.Logs = append(sc.Logs, report.Mask(line))
				}
			}
			if n := len(sc.Logs); n > LogLines {
				sc.Logs = sc.Logs[n-LogLines:]
			}
		}
	}
}
