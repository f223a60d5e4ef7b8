// A policy's answer (WIT `variant decision { allow, deny(string) }`).

export class Decision {
  /** Use allow() / deny(reason) instead. */
  constructor(public allowed: bool, public reason: string) {}
}

/** Grant the request. */
export function allow(): Decision {
  return new Decision(true, "");
}

/** Refuse the request; `reason` goes to the requester and the audit log. */
export function deny(reason: string): Decision {
  return new Decision(false, reason);
}
