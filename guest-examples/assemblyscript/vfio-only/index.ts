// vfio-only: device passthrough (VFIO) pins all guest memory, so VMs labelled vfio=true get
// unlimited memlock whatever they asked for; every other VM is refused. Behaviour is specified in guest-examples/README.md.
import {
  Decision, Operation, Request, CapabilityError, LogLevel,
  allow, deny, log, MEMLOCK_UNLIMITED, policy, queryVmIdentity, setMemlock, capabilityErrorName,
} from "../../../host-api/assemblyscript/index";
export * from "../../../host-api/assemblyscript/abi";

function decide(req: Request): Decision {
  if (req.operation != Operation.SetMemlock) return deny("unsupported-operation");
  const vm = queryVmIdentity(req.targetPid);
  if (vm === null) return deny("target-not-in-requester-vm");
  if (vm.label("vfio") != "true") return deny("vm-not-vfio"); // a missing label is null, not "true"
  const err = setMemlock(req.targetPid, MEMLOCK_UNLIMITED);
  if (err != CapabilityError.None) return deny("set-memlock-failed: " + capabilityErrorName(err));
  log(LogLevel.Info, "vfio memlock set to unlimited");
  return allow();
}

policy(decide);
