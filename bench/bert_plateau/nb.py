# How fast does a model that sees only the two neighbours learn? (PyTorch, same token stream)
import os
import struct, sys, time, numpy as np, torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(1); torch.manual_seed(0)
import tokens; docs,off,ids=tokens.load()
ids=ids.astype(np.int64)
isval=np.zeros(toks,bool)
for d in range(docs):
    if d%100==98: isval[off[d]:off[d+1]]=True
V=8000; H=int(sys.argv[1]) if len(sys.argv)>1 else 128; B=int(sys.argv[2]) if len(sys.argv)>2 else 300; lr=float(sys.argv[3]) if len(sys.argv)>3 else 1e-3
pos=np.arange(1,toks-1); tr=pos[~isval[pos]&(ids[pos]>=5)]; va=pos[isval[pos]&(ids[pos]>=5)][:20000]
L=nn.Embedding(V,H); R=nn.Embedding(V,H); out=nn.Linear(H,V)
for e in (L,R): nn.init.normal_(e.weight,0,0.02)
ps=list(L.parameters())+list(R.parameters())+list(out.parameters()); opt=torch.optim.Adam(ps,lr=lr)
rng=np.random.default_rng(0)
def f(p): t=torch.from_numpy; return out(F.gelu(L(t(ids[p-1]))+R(t(ids[p+1]))))
t0=time.time()
for s in range(1,3001):
    p=tr[rng.integers(0,len(tr),B)]; lg=f(p); loss=F.cross_entropy(lg,torch.from_numpy(ids[p]))
    opt.zero_grad(); loss.backward(); opt.step()
    if s in (100,250,500,1000,1500,2000,3000):
        with torch.no_grad(): lv=f(va); acc=(lv.argmax(-1).numpy()==ids[va]).mean()*100; l=F.cross_entropy(lv,torch.from_numpy(ids[va])).item()
        print(f'step {s} val top1 {acc:.2f} loss {l:.3f} {time.time()-t0:.0f}s',flush=True)
