// Finding a program the way a shell does.
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';

/** The first executable called `name` on PATH, or undefined. */
export function which(name: string, path = process.env.PATH ?? ''): string | undefined {
  for (const dir of path.split(':').filter(Boolean)) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}
