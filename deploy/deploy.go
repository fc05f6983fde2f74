// Package deploy renders the task definition, compares it with the live one,
// applies the guards, registers, updates the service, follows the deployment
// it started and verifies the running tasks. Decisions are pure functions;
// the code around them only fetches and applies.
package deploy
