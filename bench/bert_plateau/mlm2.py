# Fast recipe search for masked-LM on the bert-study token stream, in PyTorch (diagnosis of the 13 % plateau).
import os
# args: key=value ... layers hidden heads ff T batch lr steps warmup prenorm(0/1) dropout wd seed
import struct, sys, time, math, numpy as np, torch, torch.nn as nn, torch.nn.functional as F
a=dict(layers=4,hidden=128,heads=2,ff=512,T=128,batch=32,lr=1e-3,steps=1000,warmup=500,total=8000,prenorm=0,dropout=0.1,wd=0.01,seed=0,evalevery=250,threads=1,init=0.02,maskp=0.15,possin=0.0,posstd=0.0,t1=0,switch=0,b1=0,local=0.0,pdims=32,pamp=1.0)
for kv in sys.argv[1:]:
    k,v=kv.split('='); a[k]=type(a[k])(float(v)) if not isinstance(a[k],str) else v
torch.set_num_threads(int(a['threads'])); torch.manual_seed(int(a['seed']))
import tokens; docs,off,ids=tokens.load()
V=8000; T=int(a['T']); W=T-2
def stream_of(keep):
    parts=[]
    for d in range(docs):
        if keep(d): parts.append(ids[off[d]:off[d+1]]); parts.append(np.array([3],dtype='<i4'))
    return np.concatenate(parts[:-1]).astype(np.int64)
tr=stream_of(lambda d: d%100 not in (98,99)); va=stream_of(lambda d: d%100==98)
n=len(tr)//W; windows=tr[:n*W].reshape(n,W)
T1=int(a['t1']); W1=T1-2; B1=int(a['b1'])
if T1>0: n1=len(tr)//W1; windows1=tr[:n1*W1].reshape(n1,W1); order1=np.random.default_rng(5).permutation(n1); p1=0
nv=min(len(va)//W,300); vw=va[:nv*W].reshape(nv,W)
class Layer(nn.Module):
    def __init__(s,H,nh,ff,p,pre):
        super().__init__(); s.nh=nh; s.pre=pre
        s.qkv=nn.Linear(H,3*H); s.o=nn.Linear(H,H); s.l1=nn.LayerNorm(H,eps=1e-12); s.f1=nn.Linear(H,ff); s.f2=nn.Linear(ff,H); s.l2=nn.LayerNorm(H,eps=1e-12); s.d=nn.Dropout(p)
    def att(s,x):
        N,L,H=x.shape; q,k,v=s.qkv(x).view(N,L,3,s.nh,H//s.nh).permute(2,0,3,1,4)
        pr=(q@k.transpose(-1,-2)/math.sqrt(H//s.nh)).softmax(-1); pr=s.d(pr)
        return s.d(s.o((pr@v).transpose(1,2).reshape(N,L,H)))
    def forward(s,x):
        if s.pre:
            x=x+s.att(s.l1(x)); return x+s.d(s.f2(F.gelu(s.f1(s.l2(x)))))
        x=s.l1(x+s.att(x)); return s.l2(x+s.d(s.f2(F.gelu(s.f1(x)))))
class M(nn.Module):
    def __init__(s,L,H,nh,ff,p,pre):
        super().__init__(); s.we=nn.Embedding(V,H); s.pe=nn.Embedding(T,H); s.ln=nn.LayerNorm(H,eps=1e-12); s.d=nn.Dropout(p)
        s.layers=nn.ModuleList([Layer(H,nh,ff,p,pre) for _ in range(L)]); s.fin=nn.LayerNorm(H,eps=1e-12) if pre else nn.Identity()
        s.td=nn.Linear(H,H); s.tl=nn.LayerNorm(H,eps=1e-12); s.bias=nn.Parameter(torch.zeros(V))
    def forward(s,x,sel):
        h=s.d(s.ln(s.we(x)+s.pe.weight[:x.shape[1]]))
        for l in s.layers: h=l(h)
        h=s.fin(h)[sel]; return s.tl(F.gelu(s.td(h)))@s.we.weight.t()+s.bias
m=M(int(a['layers']),int(a['hidden']),int(a['heads']),int(a['ff']),a['dropout'],int(a['prenorm']))
for mod in m.modules():
    if isinstance(mod,(nn.Linear,nn.Embedding)): nn.init.normal_(mod.weight,0,a['init'])
    if isinstance(mod,nn.Linear) and mod.bias is not None: nn.init.zeros_(mod.bias)
if a['posstd']>0:
    with torch.no_grad(): nn.init.normal_(m.pe.weight,0,a['posstd'])
if a['possin']>0:
    with torch.no_grad():
        H_=int(a['hidden']); pos_=torch.arange(T).float()[:,None]; i_=torch.arange(0,H_,2).float()[None,:]
        ang=pos_/torch.pow(10000.0,i_/H_); pe=torch.zeros(T,H_); pe[:,0::2]=torch.sin(ang); pe[:,1::2]=torch.cos(ang)
        m.pe.weight.copy_(pe*a['possin'])
if a['local']>0:
    # A locality prior: sinusoidal positions in the first pdims dims, and layer 0's head 0 (1) looking one token left (right).
    with torch.no_grad():
        P=int(a['pdims']); H_=int(a['hidden']); hd=H_//int(a['heads'])
        pos_=torch.arange(T).float()[:,None]; fr=1.0/torch.pow(10000.0,torch.arange(P//2).float()/(P//2))
        ang=pos_*fr[None,:]; pe=torch.zeros(T,H_); pe[:,0:P:2]=torch.sin(ang); pe[:,1:P:2]=torch.cos(ang)
        m.pe.weight.copy_(pe*a['pamp'])
        L0=m.layers[0]; Wq=L0.qkv.weight[:H_]; Wk=L0.qkv.weight[H_:2*H_]
        c=a['local']
        for h_,shift in ((0,-1),(1,1)):
            for f in range(P//2):
                w=fr[f].item()*shift
                co,si=math.cos(w),math.sin(w)
                r0=h_*hd+2*f
                Wq[r0,2*f]=c; Wq[r0+1,2*f+1]=c
                # k_j = p_{j+shift} = [sin(a+w), cos(a+w)] = [sin a cos w + cos a sin w, cos a cos w - sin a sin w]
                Wk[r0,2*f]=c*co; Wk[r0,2*f+1]=c*si; Wk[r0+1,2*f]=-c*si; Wk[r0+1,2*f+1]=c*co
dec=[p for n_,p in m.named_parameters() if p.dim()>=2]; nodec=[p for n_,p in m.named_parameters() if p.dim()<2]
opt=torch.optim.AdamW([{'params':dec,'weight_decay':a['wd']},{'params':nodec,'weight_decay':0.0}],lr=a['lr'])
wu=int(a['warmup']); tot=int(a['total'])
sched=torch.optim.lr_scheduler.LambdaLR(opt,lambda s: s/wu if s<wu else max(0.0,(tot-s)/(tot-wu)))
rng=np.random.default_rng(int(a['seed'])); order=rng.permutation(n); p=0; B=int(a['batch'])
vr=np.random.default_rng(99); vx=np.zeros((nv,T),np.int64); vx[:,0]=2; vx[:,1:W+1]=vw; vx[:,W+1]=3
vsel=(vr.random((nv,T))<0.15); vsel[:,0]=False; vsel[:,W+1]=False; vsel&=(vx>=5); vxm=vx.copy(); vxm[vsel]=4
def evaluate():
    m.eval(); c=0; tl=0
    with torch.no_grad():
        for i in range(0,nv,100):
            x=torch.from_numpy(vxm[i:i+100]); s=torch.from_numpy(vsel[i:i+100]); y=torch.from_numpy(vx[i:i+100])[s]
            lg=m(x,s); c+=(lg.argmax(-1)==y).sum().item(); tl+=F.cross_entropy(lg,y,reduction='sum').item()
    m.train(); k=vsel.sum(); return 100*c/k, tl/k
acc=[];ls=[];t0=time.time()
print(a,flush=True)
for step in range(1,int(a['steps'])+1):
    if T1>0 and step<=int(a['switch']):
        if p1+B1>n1: p1=0
        b=windows1[order1[p1:p1+B1]]; p1+=B1; Bs,Ts,Ws=B1,T1,W1
    else:
        if p+B>n: order=rng.permutation(n); p=0
        b=windows[order[p:p+B]]; p+=B; Bs,Ts,Ws=B,T,W
    x=np.zeros((Bs,Ts),np.int64); x[:,0]=2; x[:,1:Ws+1]=b; x[:,Ws+1]=3
    sel=(rng.random((Bs,Ts))<a['maskp']); sel[:,0]=False; sel[:,Ws+1]=False; sel&=(x>=5)
    u=rng.random((Bs,Ts)); xm=x.copy(); xm[sel&(u<0.8)]=4; r=sel&(u>=0.8)&(u<0.9); xm[r]=rng.integers(5,V,r.sum())
    st=torch.from_numpy(sel); y=torch.from_numpy(x)[st]
    lg=m(torch.from_numpy(xm),st); loss=F.cross_entropy(lg,y)
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(),1.0); opt.step(); sched.step()
    acc.append((lg.argmax(-1)==y).float().mean().item()); ls.append(loss.item())
    if step%50==0:
        print(f'step {step} loss {np.mean(ls):.3f} top1 {100*np.mean(acc):.2f} {time.time()-t0:.0f}s',flush=True); acc=[];ls=[]
    if step%int(a['evalevery'])==0:
        va_,vl=evaluate(); print(f'EVAL step {step} all-mask top1 {va_:.2f} loss {vl:.3f}',flush=True)
