// The scenario every starter policy ships with. The starters of all languages implement the same
// rules (cap from the VM label "memlock-max", else 4 GiB), so one scenario tests them all.

export const SCENARIO_YAML = `# Scenario for \`capgate test build/policy.wasm scenario.yaml\` (run by \`npm test\`).
# Each case runs in a fresh copy of this simulated host.
host:
  canRaiseHardLimit: true        # the daemon holds CAP_SYS_RESOURCE
vms:
  - uuid: 6f1c2a8e-0000-4000-8000-000000000001
    name: db-vm
    id: 1
    labels:
      memlock-max: "17179869184" # 16Gi
    pids: [1000, 1001]           # 1000: libvirt's helper, 1001: QEMU
  - uuid: 6f1c2a8e-0000-4000-8000-000000000002
    name: other-tenant
    id: 2
    pids: [2000]
processes:
  - pid: 1001
    memlock: { soft: 64Ki, hard: 64Ki }
cases:
  - name: raise QEMU within the cap
    request: { requesterPid: 1000, requesterUid: 107, targetPid: 1001, bytes: 8Gi }
    expect:
      decision: allow
      calls:
        - { op: query-vm-identity, pid: 1001, result: some }
        - { op: set-memlock, pid: 1001, bytes: 8Gi, result: ok }
      logs:
        - { level: info, message: memlock raised for VM db-vm }
      maxFuel: 200000

  - name: over the VM's cap
    request: { requesterPid: 1000, requesterUid: 107, targetPid: 1001, bytes: 32Gi }
    expect:
      decision: deny
      reason: over-cap
      calls:
        - { op: query-vm-identity, pid: 1001, result: some }

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
`;

/** The package.json of a project whose build is one command; `npm test` builds, then simulates. */
export function packageJson(name: string, description: string, build: string, devDependencies?: Record<string, string>): string {
  return `${JSON.stringify(
    {
      name,
      version: '0.1.0',
      private: true,
      description,
      scripts: { build, test: 'npm run build && capgate test build/policy.wasm scenario.yaml' },
      ...(devDependencies ? { devDependencies } : {}),
    },
    null,
    2,
  )}\n`;
}
