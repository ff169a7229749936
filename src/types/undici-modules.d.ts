// undici's own files, imported one by one so a gateway loads the Pool it forwards with and not the whole library
// (fetch, WebSocket, cache, mocks: ~8 MB of resident memory). undici has no exports map; the types are its own.
declare module 'undici/lib/dispatcher/pool.js' {
  import { Pool } from 'undici';
  export default Pool;
}

declare module 'undici/lib/core/errors.js' {
  export { HeadersTimeoutError, BodyTimeoutError } from 'undici/types/errors';
}

declare module 'undici/lib/core/connect.js' {
  import buildConnector from 'undici/types/connector';
  export default buildConnector;
}
