# What does a masked-LM checkpoint use from its context? Validation documents (d % 100 == 98), [MASK] on 15 %.
import os
import sys, struct, numpy as np, torch
HERE=os.path.dirname(os.path.abspath(__file__)); sys.path.insert(0,os.path.join(HERE,'..','..','python')); sys.path.insert(0,HERE)
import wtn_models, ckpt
torch.set_num_threads(1)
path=sys.argv[1]; hidden=int(sys.argv[2]); heads=int(sys.argv[3]); hs=int(sys.argv[4]); ff=int(sys.argv[5])
sd={k.split('::',1)[1]:torch.from_numpy(v.copy()) for k,v in ckpt.read(path).items() if k.startswith('model::')}
m=wtn_models.BertForMaskedLM(8000,128,4,hidden,heads,hs,ff); sd['cls.predictions.decoder.weight']=sd['bert.embeddings.word_embeddings.weight']
sd['cls.predictions.decoder.bias']=sd['cls.predictions.bias']
missing=m.load_state_dict(sd,strict=False); print(missing)
m.eval()
import tokens; docs,off,ids=tokens.load()
parts=[]
for d in range(docs):
    if d%100==98: parts.append(ids[off[d]:off[d+1]]); parts.append(np.array([3],dtype='<i4'))
stream=np.concatenate(parts).astype(np.int64); W=126; T=128
n=min(len(stream)//W,400); windows=stream[:n*W].reshape(n,W)
rng=np.random.default_rng(1)
x=np.zeros((n,T),np.int64); x[:,0]=2; x[:,1:W+1]=windows; x[:,W+1]=3
sel=(rng.random((n,T))<0.15); sel[:,0]=False; sel[:,W+1]=False; sel&=(x>=5)
xm=x.copy(); xm[sel]=4
def acc(inp):
    with torch.no_grad():
        out=[]
        for i in range(0,n,50):
            lg=m(torch.from_numpy(inp[i:i+50]))
            out.append(lg.argmax(-1).numpy())
        p=np.concatenate(out)
    return 100*(p[sel]==x[sel]).mean()
print('windows',n,'masked',sel.sum())
print('as is', acc(xm))
# shuffle unmasked tokens among unmasked positions (positions 1..W)
xs=xm.copy()
for i in range(n):
    pos=np.where(~sel[i,1:W+1])[0]+1; xs[i,pos]=xm[i,rng.permutation(pos)]
print('order shuffled (masks in place)', acc(xs))
# keep only neighbours within +-k of each masked position; everything else -> a random token
for k in (1,2,4,8):
    xk=xm.copy()
    keep=np.zeros_like(sel)
    for dd in range(-k,k+1): keep|=np.roll(sel,dd,axis=1)
    keep[:,0]=True; keep[:,W+1]=True
    rnd=rng.integers(5,8000,size=xm.shape); xk[~keep]=rnd[~keep]
    print(f'only +-{k} kept, rest random', acc(xk))
# left only / right only neighbour destroyed
for name,dd in (('left neighbour random',1),('right neighbour random',-1)):
    xk=xm.copy(); nb=np.roll(sel,dd,axis=1)&~sel; nb[:,0]=False; nb[:,W+1]=False
    rnd=rng.integers(5,8000,size=xm.shape); xk[nb]=rnd[nb]; print(name, acc(xk))
