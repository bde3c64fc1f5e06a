import { useMutation, useQueryClient } from "@tanstack/react-query";
import { api, unwrap } from "../../api/client";
import { patchBody, type JobBody, type JobRead } from "../../jobForm";

/** Save a job of a workflow: a new one is created (POST), an existing one (`job` with an id)
 * gets only its changed fields with the version read (PATCH: a change made meanwhile is a
 * 409). `body` builds the job's whole body from the form when the save is asked for. */
export function useSaveJob(workflowId: string, job: JobRead | null | undefined, body: () => JobBody, onDone: () => void) {
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: () => {
      const built = body();
      if (job?.id) {
        return unwrap(
          api.PATCH("/api/workflows/{workflow_id}/jobs/{job_id}", {
            params: { path: { workflow_id: workflowId, job_id: job.id }, query: {} },
            body: patchBody(job, built) as never,
          }),
        );
      }
      return unwrap(api.POST("/api/workflows/{workflow_id}/jobs", { params: { path: { workflow_id: workflowId } }, body: built as never }));
    },
    onSuccess: () => {
      queryClient.invalidateQueries({ queryKey: ["jobs", workflowId] });
      queryClient.invalidateQueries({ queryKey: ["workflow", workflowId] });
      onDone();
    },
  });
}
