/** @module
 * setContainerState: a container moves forward in its lifecycle (OPEN -> CLOSING ->
 * QUASI_CLOSED -> CLOSED), never back; answers the state it has after the entry.
 */
import { O3Error } from '../../../core/errors.ts'
import { CONTAINER_STATE_ORDER, type ContainerId, type ContainerState } from '../../../core/wire.ts'
import type { ReplicatedRequest } from '../../ha/replicated-service.ts'
import type { ScmTables } from '../tables.ts'

export function setContainerState(t: () => ScmTables): ReplicatedRequest<{ id: ContainerId; state: ContainerState }, { id: ContainerId; state: ContainerState }, ContainerState> {
  return {
    name: 'setContainerState',
    prepare: (a) => {
      if (!CONTAINER_STATE_ORDER.includes(a.state)) throw new O3Error('INVALID_ARGUMENT', `Cannot move container ${a.id} to ${a.state}`)
      return { id: a.id, state: a.state }
    },
    apply: (_db, p) => {
      const c = t().containers.get(p.id)
      if (c === undefined) throw new O3Error('CONTAINER_NOT_FOUND', `Cannot move container ${p.id} to ${p.state}: not found`)
      if (CONTAINER_STATE_ORDER.indexOf(p.state) <= CONTAINER_STATE_ORDER.indexOf(c.state)) return c.state
      t().containers.putSync(p.id, { ...c, state: p.state })
      return p.state
    },
  }
}
