# Reads a wtn checkpoint's module sections (TorchSharp module.save format) into numpy arrays.
import struct, numpy as np
DT={6:np.float32,7:np.float64,4:np.int64,3:np.int32,5:np.float16}
def rstr(b,p):
    n=0;s=0
    while True:
        c=b[p];p+=1;n|=(c&0x7f)<<s;s+=7
        if c<0x80:break
    return b[p:p+n].decode(),p+n
def enc(b,p):
    n=0;s=0
    while True:
        c=b[p];p+=1;n|=(c&0x7f)<<s;s+=7
        if c<0x80:break
    return n,p
def read(path):
    raw=open(path,'rb').read(); assert raw[:8]==b'WTNCKPT1'
    p=48; cnt=struct.unpack_from('<i',raw,p)[0]; p+=4; secs={}
    for _ in range(cnt):
        name,p=rstr(raw,p); ln=struct.unpack_from('<q',raw,p)[0]; p+=8; secs[name]=raw[p:p+ln]; p+=ln
    out={}
    for name,b in secs.items():
        if not name.startswith('module/'): continue
        q=0; n,q=enc(b,q)
        for _ in range(n):
            key,q=rstr(b,q); t,q=enc(b,q); nd,q=enc(b,q); shape=[]
            for _ in range(nd):
                d,q=enc(b,q); shape.append(d)
            dt=DT[t]; cnt_=int(np.prod(shape)) if shape else 1
            arr=np.frombuffer(b,dtype=dt,count=cnt_,offset=q).reshape(shape); q+=arr.nbytes
            out[name[7:]+'::'+key]=arr
    return out
if __name__=='__main__':
    import sys
    for k,v in read(sys.argv[1]).items(): print(k,v.shape,v.dtype)
