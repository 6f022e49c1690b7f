namespace WideThenNarrow.Method;

/// <summary>
/// Which wide imitation point each thin point imitates. Points are numbered 0..L (0 is the stem); with
/// L_S thin and L_B wide blocks after the stem, thin point k imitates wide point round(k * L_B / L_S)
/// (half away from zero: our choice, the paper is silent). Equal depths give the identity.
/// </summary>
public static class LayerMap
{
    public static int[] Build(int thinPoints, int widePoints)
    {
        if (thinPoints < 1 || widePoints < 1)
            throw new WtnException("layer map: both networks need at least a stem");
        int ls = thinPoints - 1,
            lb = widePoints - 1;
        var map = new int[thinPoints];
        for (int k = 0; k < thinPoints; k++)
            map[k] = ls == 0 ? 0 : (int)Math.Round((double)k * lb / ls, MidpointRounding.AwayFromZero);
        return map;
    }
}
