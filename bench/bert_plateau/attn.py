import sys, struct, math, numpy as np, torch
import os
HERE=os.path.dirname(os.path.abspath(__file__)); sys.path.insert(0,os.path.join(HERE,'..','..','python')); sys.path.insert(0,HERE)
import wtn_models, ckpt
torch.set_num_threads(1)
path=sys.argv[1]; hidden=int(sys.argv[2]); heads=int(sys.argv[3]); hs=int(sys.argv[4]); ff=int(sys.argv[5])
sd={k.split('::',1)[1]:torch.from_numpy(v.copy()) for k,v in ckpt.read(path).items() if k.startswith('model::')}
m=wtn_models.BertForMaskedLM(8000,128,4,hidden,heads,hs,ff); sd['cls.predictions.decoder.weight']=sd['bert.embeddings.word_embeddings.weight']; sd['cls.predictions.decoder.bias']=sd['cls.predictions.bias']
m.load_state_dict(sd,strict=False); m.eval()
import tokens; docs,off,ids=tokens.load()
st=np.concatenate([ids[off[d]:off[d+1]] for d in range(docs) if d%100==98]).astype(np.int64)[:126*40].reshape(40,126)
x=np.zeros((40,128),np.int64); x[:,0]=2; x[:,1:127]=st; x[:,127]=3
rng=np.random.default_rng(0); sel=rng.random(x.shape)<0.15; sel[:,0]=sel[:,127]=False; x[sel]=4
xt=torch.from_numpy(x)
with torch.no_grad():
    hdn=m.bert.embeddings(xt, torch.zeros_like(xt))
    for li,layer in enumerate(m.bert.encoder.layer):
        sa=layer.attention.self; n,t,_=hdn.shape
        sp=lambda y: y.view(n,t,sa.heads,sa.size).transpose(1,2)
        q,k=sp(sa.query(hdn)),sp(sa.key(hdn)); p=(q@k.transpose(-1,-2)/math.sqrt(sa.size)).softmax(-1)  # n,h,t,t
        ent=-(p*torch.log(p+1e-12)).sum(-1).mean((0,2))
        i=torch.arange(1,t-1)
        left=p[:,:,i,i-1].mean((0,2)); right=p[:,:,i,i+1].mean((0,2)); self_=p[:,:,i,i].mean((0,2))
        print(f'layer {li}: entropy per head {[round(v,2) for v in ent.tolist()]} (uniform {math.log(t):.2f}); mass on left {[round(v,3) for v in left.tolist()]} right {[round(v,3) for v in right.tolist()]} self {[round(v,3) for v in self_.tolist()]}')
        hdn=layer(hdn,None)
