import { JobLifecycle, JobSpec } from "@fedguard/job-lifecycle"
import { Effect } from "effect"

// Deploy and start on the sites that make it in time, as long as 2 of the 3 do and hospital-a is among them.
export const launch = (sites: JobLifecycle.SiteActions<string>) =>
  Effect.gen(function* () {
    const spec = yield* JobSpec.decode({
      name: "cifar10",
      rounds: 20,
      model: "resnet18",
      clients: ["hospital-a", "hospital-b", "hospital-c"],
      minSites: 2,
      requiredSites: ["hospital-a"],
      deployTimeout: "2 minutes",
    })
    const { job, report } = yield* JobLifecycle.run(spec, sites)
    yield* Effect.logInfo(`running on ${report.participants.join(", ")}, ${report.excluded.length} excluded`)
    return job
  })
