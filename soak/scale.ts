export async function runScale(_o: { modules: number }): Promise<void> { throw new Error("scale: not yet"); }
