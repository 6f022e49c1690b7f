using System.Runtime.CompilerServices;
using WideThenNarrow.Runtime;

namespace WideThenNarrow.Tests;

static class AssemblySetup
{
    /// <summary>The test host gets the allocator tuning and the oneDNN guard <c>wtn</c> applies at start-up, before any tensor exists.</summary>
    [ModuleInitializer]
    internal static void TuneAllocator()
    {
        NativeAllocator.Tune();
        OneDnnCpuGuard.Apply();
    }
}
