package server

// This file is the job list and job cancellation of the remote-support
// API (docs/api.md, "Jobs and results").

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"fieldagent/agent/jobs"
	"fieldagent/agent/server/auth"
	"fieldagent/agent/store"
)

// Bounds of GET /api/v1/jobs.
const (
	defaultJobsLimit = 50
	maxJobsLimit     = 1000
)

// JobSummary is a job in the job list: its state and counts, without its
// devices and results (GET /api/v1/jobs/{id} has them).
type JobSummary struct {
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`
	CreatedBy  string     `json:"created_by,omitempty"`
	State      string     `json:"state"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Total      int        `json:"total"`
	Done       int        `json:"done"`
	Failed     int        `json:"failed"`
	Error      string     `json:"error,omitempty"`
}

// JobList is the answer of GET /api/v1/jobs.
type JobList struct {
	Jobs  []JobSummary `json:"jobs"`
	Count int          `json:"count"`
}

func jobStates() []string {
	return []string{store.JobQueued, store.JobRunning, store.JobDone, store.JobFailed, store.JobCancelled, store.JobInterrupted}
}

// listJobs answers GET /api/v1/jobs?state=&kind=&limit=, newest first.
func (h *API) listJobs(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := store.JobQuery{State: v.Get("state"), Kind: v.Get("kind"), Limit: defaultJobsLimit}
	if q.State != "" && !validJobState(q.State) {
		auth.WriteError(w, http.StatusBadRequest, fmt.Sprintf("state=%q is not a job state", q.State),
			"job states are queued, running, done, failed, cancelled, interrupted")
		return
	}
	if s := v.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxJobsLimit {
			auth.WriteError(w, http.StatusBadRequest, fmt.Sprintf("limit=%q is not a number from 1 to %d", s, maxJobsLimit), "")
			return
		}
		q.Limit = n
	}
	js, err := h.cfg.Store.FindJobs(r.Context(), q)
	if err != nil {
		h.log.Error("api: jobs not listed", "err", err)
		auth.WriteError(w, http.StatusInternalServerError, "the jobs could not be read from the store", "see the server's log")
		return
	}
	out := JobList{Jobs: make([]JobSummary, 0, len(js))}
	for _, j := range js {
		out.Jobs = append(out.Jobs, JobSummary{
			ID: j.ID, Kind: j.Kind, CreatedBy: j.CreatedBy, State: j.State, CreatedAt: j.CreatedAt,
			StartedAt: timePtr(j.StartedAt), FinishedAt: timePtr(j.FinishedAt),
			Total: j.Total, Done: j.DoneCount, Failed: j.FailedCount, Error: j.Error,
		})
	}
	out.Count = len(out.Jobs)
	writeJSON(w, http.StatusOK, out)
}

func validJobState(s string) bool { return slices.Contains(jobStates(), s) }

// cancelAccepted is the 202 answer to a cancellation.
type cancelAccepted struct {
	JobID  string `json:"job_id"`
	Status string `json:"status"`
	Events string `json:"events"`
}

// cancelJob answers DELETE /api/v1/jobs/{id} and POST
// /api/v1/jobs/{id}/cancel: the job's creator, or a caller with the
// configure role, may cancel a job that is running here. Its devices that
// have not finished are recorded cancelled; the finished ones keep their
// results.
func (h *API) cancelJob(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	caller, _ := auth.Caller(r.Context())
	j, err := h.cfg.Store.Job(r.Context(), id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		auth.WriteError(w, http.StatusNotFound, fmt.Sprintf("no job %q", id), "GET /api/v1/jobs lists the jobs")
		return
	case err != nil:
		h.log.Error("api: job not read", "job", id, "err", err)
		auth.WriteError(w, http.StatusInternalServerError, "the job could not be read from the store", "see the server's log")
		return
	}
	if caller.Name != j.CreatedBy && !caller.Role.Allows(auth.RoleConfigure) {
		auth.WriteError(w, http.StatusForbidden, fmt.Sprintf("job %s was started by %q: only its creator or a configure-role token may cancel it", id, j.CreatedBy),
			"ask its creator, or a supervisor with a configure token")
		return
	}
	if j.Finished() {
		auth.WriteError(w, http.StatusConflict, fmt.Sprintf("job %s has already ended (%s)", id, j.State), "GET /api/v1/jobs/"+id+" has its results")
		return
	}
	if err := h.cfg.Runner.Cancel(id); errors.Is(err, jobs.ErrNotActive) {
		auth.WriteError(w, http.StatusConflict, fmt.Sprintf("job %s is not running in this server (it is %s in the store)", id, j.State),
			"it ended meanwhile, or another server runs it")
		return
	} else if err != nil {
		h.log.Error("api: job not cancelled", "job", id, "err", err)
		auth.WriteError(w, http.StatusInternalServerError, "the job could not be cancelled", "see the server's log")
		return
	}
	h.log.Info("api: job cancel requested", "job", id, "by", caller.Name)
	writeJSON(w, http.StatusAccepted, cancelAccepted{JobID: id, Status: "cancelling", Events: "/api/v1/jobs/" + id + "/events"})
}
