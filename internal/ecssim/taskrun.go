package ecssim

import "github.com/hackforla/ctjdeploy/internal/taskrun"

// The real-container runner lives in internal/taskrun (it runs a task
// definition on a Docker engine; `ctjdeploy ENV local` uses it too). These
// names keep the simulator's API (Options.Engine, ecssim.NewEngine, ...)
// as it was: they are the taskrun types, not a copy.
type (
	Engine           = taskrun.Engine
	EngineOptions    = taskrun.EngineOptions
	TaskSpec         = taskrun.TaskSpec
	ContainerSpec    = taskrun.ContainerSpec
	VolumeSpec       = taskrun.VolumeSpec
	DockerVolumeSpec = taskrun.DockerVolumeSpec
	MountSpec        = taskrun.MountSpec
	RunningTask      = taskrun.RunningTask
	TaskExit         = taskrun.TaskExit
)

// DefaultEngineLabel marks every container an Engine creates unless
// EngineOptions.Label says otherwise.
const DefaultEngineLabel = taskrun.DefaultEngineLabel

// NewEngine connects to the Docker engine (taskrun.NewEngine).
func NewEngine(o EngineOptions) (*Engine, error) { return taskrun.NewEngine(o) }

// SharedVolume is taskrun.SharedVolume.
func SharedVolume(group, volume string) string { return taskrun.SharedVolume(group, volume) }
