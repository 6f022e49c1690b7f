using System.Runtime.CompilerServices;
using WideThenNarrow.Runtime;

namespace WideThenNarrow.Tests;

static class AssemblySetup
{
    /// <summary>
    /// The test host gets the allocator tuning <c>wtn</c> applies at start-up, and the oneDNN guard up front (a wtn
    /// process applies it when it builds a network with 1x1 convolutions, its first convolutions), before any tensor exists.
    /// </summary>
    [ModuleInitializer]
    internal static void TuneAllocator()
    {
        NativeAllocator.Tune();
        OneDnnCpuGuard.Apply();
    }
}
