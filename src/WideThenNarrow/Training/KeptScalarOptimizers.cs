using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace WideThenNarrow.Training;

/// <summary>
/// TorchSharp's SGD and AdamW with their Scalars kept alive. The classes keep TorchSharp's type names (<c>SGD</c>,
/// <c>AdamW</c>) because TorchSharp writes <c>GetType().Name</c> into the optimiser state and refuses another name on
/// load: so a checkpoint written with TorchSharp's own optimiser resumes under these and the other way round.
/// </summary>
public static class KeptScalar
{
    /// <summary>
    /// Loads optimiser state written by <c>save_state_dict</c>. wtn's builds of 2026-12-05 wrote these classes' state
    /// under the names <c>KeptScalarSgd</c> and <c>KeptScalarAdamW</c>; such state is read as <c>SGD</c> and
    /// <c>AdamW</c>, whose format it shares, so checkpoints from those builds resume.
    /// </summary>
    public static void LoadState(optim.Optimizer optimizer, byte[] state)
    {
        using var reader = new BinaryReader(new MemoryStream(state));
        var name = reader.ReadString();
        var renamed = name switch
        {
            "KeptScalarSgd" => "SGD",
            "KeptScalarAdamW" => "AdamW",
            _ => name,
        };
        var fixedUp = new MemoryStream();
        using (var writer = new BinaryWriter(fixedUp, System.Text.Encoding.UTF8, leaveOpen: true))
        {
            writer.Write(renamed);
            writer.Write(state, (int)reader.BaseStream.Position, state.Length - (int)reader.BaseStream.Position);
        }
        fixedUp.Position = 0;
        using var fixedReader = new BinaryReader(fixedUp);
        ((OptimizerHelper)optimizer).load_state_dict(fixedReader);
    }

    /// <summary>
    /// TorchSharp's SGD with the same update, operation for operation (so the same weights, bit for bit, and the same
    /// checkpoint state), but every <see cref="Scalar"/> it passes to libtorch held in a variable and disposed after use.
    /// TorchSharp's own step converts doubles to Scalars implicitly; such a temporary is unreachable while libtorch still
    /// reads it, so the garbage collector's finalizer thread can free it mid-call. That use-after-free showed as rare,
    /// random crashes deep into long runs ("Unknown scalar type" in mul_, "Expected false to be true"); see
    /// dotnet/TorchSharp pull requests 1434 and 1496.
    /// </summary>
    public sealed class SGD(
        IEnumerable<TorchSharp.Modules.SGD.ParamGroup> groups,
        double lr,
        double momentum,
        double dampening,
        double weightDecay,
        bool nesterov
    ) : TorchSharp.Modules.SGD(groups, lr, momentum, dampening, weightDecay, nesterov)
    {
        public override Tensor step(Func<Tensor>? closure = null) =>
            _step<ParamGroup>(
                group =>
                {
                    var o = group.Options;
                    double momentum = o.momentum!.Value,
                        dampening = o.dampening!.Value,
                        decay = o.weight_decay!.Value,
                        lr = o.LearningRate!.Value;
                    bool nesterov = o.nesterov!.Value,
                        maximize = o.maximize!.Value;
                    using var decayS = decay.ToScalar();
                    using var momentumS = momentum.ToScalar();
                    using var keep = (1 - dampening).ToScalar();
                    using var rate = (maximize ? lr : -lr).ToScalar();
                    foreach (var p in group.Parameters)
                    {
                        var grad = p.grad;
                        if (grad is null)
                            continue;
                        var state = (State)_state[p.Handle];
                        if (decay != 0)
                            grad = grad.add(p, decayS);
                        if (momentum != 0)
                        {
                            var buffer = state.momentum_buffer;
                            if (buffer is null)
                                state.momentum_buffer = buffer = grad.clone().detach().DetachFromDisposeScope();
                            else
                                buffer.mul_(momentumS).add_(grad, keep);
                            grad = nesterov ? grad.add(buffer, momentumS) : buffer;
                        }
                        p.add_(grad, rate);
                    }
                },
                closure
            );
    }

    /// <summary>TorchSharp's AdamW, operation for operation, with its Scalars kept alive and disposed (see <see cref="SGD"/>).</summary>
    public sealed class AdamW(
        IEnumerable<TorchSharp.Modules.AdamW.ParamGroup> groups,
        double lr,
        double beta1,
        double beta2,
        double eps,
        double weightDecay
    ) : TorchSharp.Modules.AdamW(groups, lr, beta1, beta2, eps, weightDecay)
    {
        public override Tensor step(Func<Tensor>? closure = null) =>
            _step<ParamGroup>(
                group =>
                {
                    var o = (Options)group.Options;
                    double beta1 = o.beta1!.Value,
                        beta2 = o.beta2!.Value,
                        decay = o.weight_decay!.Value,
                        eps = o.eps!.Value,
                        lr = o.LearningRate!.Value;
                    bool amsgrad = o.amsgrad!.Value,
                        maximize = o.maximize!.Value;
                    using var shrink = (1 - lr * decay).ToScalar();
                    using var beta1S = beta1.ToScalar();
                    using var beta2S = beta2.ToScalar();
                    using var rest1 = (1 - beta1).ToScalar();
                    using var rest2 = (1 - beta2).ToScalar();
                    using var epsS = eps.ToScalar();
                    foreach (var p in group.Parameters)
                    {
                        var grad = p.grad;
                        if (grad is null)
                            continue;
                        if (maximize)
                            grad = -grad;
                        var state = (State)_state[p.Handle];
                        state.step += 1;
                        p.mul_(shrink);
                        double correction1 = 1 - Math.Pow(beta1, state.step),
                            correction2 = 1 - Math.Pow(beta2, state.step);
                        state.exp_avg.mul_(beta1S).add_(grad, rest1);
                        state.exp_avg_sq.mul_(beta2S).addcmul_(grad, grad, rest2);
                        using var root2 = Math.Sqrt(correction2).ToScalar();
                        Tensor denominator;
                        if (amsgrad)
                        {
                            var old = state.max_exp_avg_sq;
                            state.max_exp_avg_sq = maximum(old, state.exp_avg_sq).DetachFromDisposeScope();
                            old.Dispose();
                            denominator = state.max_exp_avg_sq.sqrt().div(root2).add_(epsS);
                        }
                        else
                            denominator = state.exp_avg_sq.sqrt().div(root2).add_(epsS);
                        using var stepSize = (-(lr / correction1)).ToScalar();
                        p.addcdiv_(state.exp_avg, denominator, stepSize);
                    }
                },
                closure
            );
    }
}
