// The scenario every starter policy ships with. The starters of all languages implement the same
// rules (cap from the VM label "memlock-max", a Kubernetes quantity, else 4Gi), so one scenario
// tests them all.

export const SCENARIO_YAML = `# Scenario for \`capgate test build/policy.wasm scenario.yaml\` (run by \`npm test\`); the format
# is in capgate-sdk/SCENARIO.md. Each case runs in a fresh copy of this simulated host.
host:
  canRaiseHardLimit: true        # the daemon holds CAP_SYS_RESOURCE
vms:
  - uuid: 6f1c2a8e-0000-4000-8000-000000000001
    name: db-vm
    id: 1
    labels:
      memlock-max: 16Gi          # a Kubernetes quantity: 16Gi = 16 × 2^30 bytes
    pids: [1000, 1001]           # 1000: libvirt's helper, 1001: QEMU
  - uuid: 6f1c2a8e-0000-4000-8000-000000000002
    name: other-tenant
    id: 2
    pids: [2000]
  - uuid: 6f1c2a8e-0000-4000-8000-000000000003
    name: typo-vm
    id: 3
    labels:
      memlock-max: 16GB          # ambiguous: not a quantity
    pids: [3000, 3001]
processes:
  - pid: 1001
    memlock: { soft: 64Ki, hard: 64Ki }
  - pid: 1                       # a host process, in no VM
    memlock: 8Mi
cases:
  - name: raise QEMU within the cap
    request: { requesterPid: 1000, requesterUid: 107, targetPid: 1001, bytes: 8Gi }
    expect:
      decision: allow
      calls:
        - { op: query-vm-identity, pid: 1001, result: some }
        - { op: set-memlock, pid: 1001, bytes: 8Gi, result: ok }
      logs:
        - { level: info, message: memlock raised to 8Gi for VM db-vm }
      maxFuel: 200000

  - name: over the VM's cap
    request: { requesterPid: 1000, requesterUid: 107, targetPid: 1001, bytes: 32Gi }
    expect:
      decision: deny
      reason: over-cap
      calls:
        - { op: query-vm-identity, pid: 1001, result: some }
      logs:
        - { level: warn, message: "request exceeds the cap of VM db-vm: 16Gi" }

  - name: another tenant's process
    request: { requesterPid: 1000, targetPid: 2000, bytes: 1Gi }
    expect:
      decision: deny
      reason: target-not-in-requester-vm

  - name: kernel refuses without CAP_SYS_RESOURCE
    host: { canRaiseHardLimit: false }
    request: { requesterPid: 1000, targetPid: 1001, bytes: 1Gi }
    expect:
      decision: deny
      reason: "/^set-memlock-failed: not-permitted$/"   # quote values containing ": "

  - name: a label that is not a quantity
    request: { requesterPid: 3000, targetPid: 3001, bytes: 1Gi }
    expect:
      decision: deny
      reason: "invalid-label: memlock-max"

  - name: a host process asks          # the daemon answers; the policy does not run
    request: { requesterPid: 1, targetPid: 1001, bytes: 1Gi }
    expect:
      decision: deny
      reason: unknown-requester
`;
