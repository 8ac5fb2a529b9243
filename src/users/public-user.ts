import { iso } from '../clock.js';
import type { Profile } from '../pii/pii-service.js';

/** `user` as API.md defines it. Built field by field: never a database row passed through. */
export interface PublicUser {
  id: string;
  email: string;
  name: string | null;
  emailVerified: boolean;
  mfaEnabled: boolean;
  createdAt: string;
}

export function toPublicUser(
  user: { id: string; email_verified: number; mfa_enabled: number; created_at: number },
  profile: Pick<Profile, 'email' | 'name'>,
): PublicUser {
  return {
    id: user.id,
    email: profile.email,
    name: profile.name,
    emailVerified: user.email_verified === 1,
    mfaEnabled: user.mfa_enabled === 1,
    createdAt: iso(user.created_at),
  };
}
