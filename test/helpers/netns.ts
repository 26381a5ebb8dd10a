// The namespace LAN lives with the demo (it is product code: `vigil demo` builds one); tests share it.
export * from '../../node-service/src/demo/lan.ts';
