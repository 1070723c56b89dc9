# Writes tests/data/grade/cases.tsv (run from the repository root): grading cases built
# from templates over the answer styles of GSM8K, MATH500, AIME, AMC, OlympiadBench and Minerva,
# with verdicts following the documented conventions of Math-Verify, MATH is_equiv and
# NeMo-Skills math_equal. Edit here, rerun, commit both.
rows=[]
def c(g,p,v,k): rows.append((g,p,'correct' if v else 'incorrect',k))
# plain bugs
for n in ['14916','1234','50000','1000000','98765']:
    s=n
    groups=[]
    while len(s)>3: groups.insert(0,s[-3:]); s=s[:-3]
    groups.insert(0,s)
    c(n,'{,}'.join(groups),1,'thousands'); c(n,',\\!'.join(groups),1,'thousands'); c(n,','.join(groups),1,'thousands')
    c(n,'{,}'.join(groups)+'1',0,'thousands')
for u in ['meters','cm','dollars','inches','seconds']:
    c('5 \\textbf{%s}'%u,'5',1,'units'); c('5','5 \\text{ %s}'%u,1,'units'); c('5','5 \\textbf{%s}'%u,1,'units'); c('5','6 \\text{ %s}'%u,0,'units')
for a,b in [('1','2'),('3','-4'),('\\frac12','5'),('-1','7')]:
    c('%s and %s'%(a,b),'%s \\text{ and } %s'%(a,b),1,'list_words'); c('%s, %s'%(a,b),'%s \\text{ or } %s'%(a,b),1,'list_words')
    c('%s, %s'%(a,b),'%s; %s'%(a,b),1,'list_words'); c('%s, %s'%(a,b),'%s and %s'%(b,a),1,'list_words'); c('%s, %s'%(a,b),'%s and 9'%a,0,'list_words')
# relations
for a in ['2','-3','\\frac12','0','5']:
    c('(%s,\\infty)'%a,'x > %s'%a,1,'inequality'); c('[%s,\\infty)'%a,'x \\ge %s'%a,1,'inequality')
    c('(-\\infty,%s]'%a,'x \\le %s'%a,1,'inequality'); c('(-\\infty,%s)'%a,'x<%s'%a,1,'inequality')
    c('(%s,\\infty)'%a,'x \\ge %s'%a,0,'inequality'); c('(-\\infty,%s]'%a,'%s \\geq x'%a,1,'inequality')
    c('x > %s'%a,'(%s, \\infty)'%a,1,'inequality'); c('(%s,\\infty)'%a,'x < %s'%a,0,'inequality')
for a,b in [('1','3'),('-2','2'),('0','\\pi')]:
    c('[%s,%s)'%(a,b),'%s \\le x < %s'%(a,b),1,'inequality'); c('(%s,%s)'%(a,b),'%s < x < %s'%(a,b),1,'inequality'); c('[%s,%s]'%(a,b),'%s < x < %s'%(a,b),0,'inequality')
for g,p,v in [('y=2x+1','2x-y=-1',1),('y=2x+1','2x-y=1',0),('x^2+y^2=1','2x^2+2y^2=2',1),('y=-x+3','x+y=3',1),('y=-x+3','x+y=4',0),
              ('3x+4y=12','y=3-\\frac{3}{4}x',1),('y=x^2','x^2-y=0',1),('y=x^2','y=x^3',0),('2x+3y=6','4x+6y=12',1),('x-2y=4','y=\\frac{x}{2}-2',1),
              ('x+y+z=1','2x+2y+2z=2',1),('y=3x','y=3x+1',0)]:
    c(g,p,v,'equation')
# labelled / chained / approx
for n in ['5','-2','\\frac{3}{4}','12','0.5']:
    c(n,'x = %s'%n,1,'labelled'); c('x=%s'%n,n,1,'labelled'); c(n,'a = b = %s'%n,1,'chained'); c(n,'AB = CD = %s'%n,1,'chained')
    c(n,'x \\approx %s'%n,1,'approx'); c(n,'\\approx %s'%n,1,'approx'); c(n,'x = 99',0,'labelled'); c(n,'a = %s = 99'%n,0,'chained')
for t in ['(3,2)','(1,-1)','(0,5)','(\\frac12,2)']:
    c(t,'(p, q) = %s'%t,1,'labelled'); c(t,'(x,y)=%s'%t,1,'labelled'); c(t,'(a,b,c)'[:0]+'(x,y) = (9,9)',0,'labelled')
# extraction
for n in ['18','42','-7','3.5','1000']:
    c(n,'So the total is %s dollars.'%n,1,'extract_number'); c(n,'Adding these gives $%s$.'%n,1,'extract_math')
    c(n,'We get $x=%s$ and so on. The answer is %s.'%(n,n),1,'extract_phrase'); c(n,'First 3, then 4, so %s.'%n,1,'extract_number')
    c(n,'Thus the final answer is $%s$. I hope it is correct.'%n,1,'extract_phrase'); c(n,'So the total is 99 dollars.',0,'extract_number')
    c('We compute $2+2$ and obtain \\boxed{%s}.'%n,n,1,'gold_solution'); c('Natalia sold 48 clips.\n#### %s'%n,n,1,'gold_solution')
    c('We compute and obtain \\boxed{%s}.'%n,'\\boxed{98765}',0,'gold_solution'); c(n,'\\boxed{%s} and \\boxed{%s}'%('0',n),1,'multi_box')
# matrices
for m in [('1','2','3','4'),('0','-1','1','0'),('\\frac12','0','0','2')]:
    g='\\begin{pmatrix}%s&%s\\\\%s&%s\\end{pmatrix}'%m
    c(g,'\\begin{bmatrix}%s&%s\\\\%s&%s\\\\\\end{bmatrix}'%m,1,'matrix'); c(g,'\\begin{pmatrix} %s & %s \\\\ %s & %s \\\\ \\end{pmatrix}'%m,1,'matrix')
    c(g,'\\begin{pmatrix}%s&%s\\\\%s&%s\\end{pmatrix}'%(m[1],m[0],m[2],m[3]),m[0]==m[1],'matrix')
    c('\\begin{pmatrix}%s\\\\%s\\end{pmatrix}'%m[:2],'\\begin{pmatrix}%s\\\\%s\\\\\\end{pmatrix}'%m[:2],1,'matrix')
# sets, tuples, intervals, unions
for a,b,cc in [('1','2','3'),('-1','0','4'),('\\frac12','2','5'),('-3','7','11'),('0','\\sqrt2','9'),('-5','-2','6')]:
    c('\\{%s,%s,%s\\}'%(a,b,cc),'\\{%s,%s,%s\\}'%(cc,a,b),1,'set'); c('%s,%s,%s'%(a,b,cc),'%s, %s, %s'%(b,cc,a),1,'list')
    c('(%s,%s,%s)'%(a,b,cc),'(%s,%s,%s)'%(a,b,cc),1,'tuple'); c('(%s,%s,%s)'%(a,b,cc),'(%s,%s,%s)'%(b,a,cc),0,'tuple')
    c('\\{%s,%s,%s\\}'%(a,b,cc),'\\{%s,%s\\}'%(a,b),0,'set')
    c('(-\\infty,%s)\\cup(%s,\\infty)'%(a,b),'(-\\infty, %s) \\cup (%s, \\infty)'%(a,b),1,'union'); c('(-\\infty,%s)\\cup(%s,\\infty)'%(a,b),'(-\\infty,%s]\\cup(%s,\\infty)'%(a,b),0,'union')
    c('[%s,%s]'%(a,b),'[%s, %s]'%(a,b),1,'interval'); c('[%s,%s]'%(a,b),'(%s,%s)'%(a,b),0,'interval')
# numbers
for g,p,v in [('\\frac{1}{2}','0.5',1),('\\frac12','\\dfrac{1}{2}',1),('\\frac12','\\tfrac{1}{2}',1),('0.5','50\\%',1),('25\\%','0.25',1),('25\\%','25',1),
              ('2\\frac{1}{2}','\\frac52',1),('3\\frac{1}{4}','3.25',1),('1.5\\times10^{3}','1500',1),('3\\times 10^{-2}','0.03',1),('1500','1.5e3',1),
              ('30^\\circ','30',1),('90^{\\circ}','90',1),('\\sqrt[3]{8}','2',1),('\\sqrt[3]{27}','3',1),('\\sqrt{2}','1.41421356',1),('2\\sqrt{2}','\\sqrt{8}',1),
              ('2\\pi','6.283185307',1),('\\pi','3.14',0),('e^2','7.389056099',1),('\\infty','\\infty',1),('-\\infty','\\infty',0),('2\\pi r','2r\\pi',1),
              ('\\frac{\\pi}{4}','0.25\\pi',1),('3\\sqrt{3}','\\sqrt{27}',1),('\\frac{2}{3}','0.6667',0),('\\frac{2}{3}','0.666667',1),('1450000','1450001',0),
              ('10','10.0',1),('10','10.00',1),('-5','- 5',1),('\\frac{-1}{2}','-\\frac{1}{2}',1),('0.1','\\frac{1}{10}',1),('7','7.5',0),('12','\\$12',1),
              ('\\$18.90','18.9',1),('2^{10}','1024',1),('\\binom{5}{2}','10',1),('\\dbinom{6}{3}','20',1),('5!','120',1),('8','\\sqrt{64}',1),
              ('C','(C)',1),('\\text{(B)}','B',1),('A','B',0),('\\textbf{(E)}','E',1),('n(n+1)','n^2+n',1),('2n^2+n','n(2n+1)',1),('(x+1)^2','x^2+2x+1',1),
              ('(x+1)^2','x^2+1',0),('\\frac{x}{2}','0.5x',1),('2ab','2ba',1),('a^2-b^2','(a-b)(a+b)',1),('\\sin^2x+\\cos^2x','1',1),('3x','3y',0),
              ('1\\pm\\sqrt{2}','1+\\sqrt2, 1-\\sqrt2',1),('\\pm 3','3,-3',1),('\\pm3','3',0),('\\text{yes}','Yes',1),('\\text{east}','\\text{west}',0),
              ('4\\sqrt{3}+2','2+4\\sqrt3',1),('6.022\\times10^{23}','6.022e23',1),('1.6\\times 10^{-19}','1.6e-19',1),('50\\%','0.5',1),('100','1000',0),
              ('0','0.0',1),('0','-0',1),('3','3.0001',0),('2.5','\\frac{5}{2}',1),('\\frac{1}{3}','0.\\overline{3}',0),('33','\\mathbf{33}',1),
              ('42','\\boxed{42}',1),('5\\text{ cm}^2','5',1),('5','5\\,\\text{cm}',1),('17','$17$',1),('204','204.',1),('-3','(-3)',1),('\\sqrt{3}/2','\\frac{\\sqrt3}{2}',1)]:
    c(g,p,v,'number' if not any(ch.isalpha() for ch in g.replace('\\frac','').replace('\\sqrt','').replace('\\pi','').replace('\\circ','').replace('\\times','').replace('\\dfrac','').replace('\\infty','').replace('\\text','').replace('\\binom','').replace('\\dbinom','')) else 'expression')
# AIME / AMC / GSM8K style integer answers with formatting
for n in ['033','204','7','110','25']:
    c(n.lstrip('0'),n,1,'aime'); c(n,'\\boxed{%s}'%n.lstrip('0'),1,'aime'); c(n,'\\boxed{%d}'%(int(n)+1),0,'aime')
for n in ['72','10','5','18','624']:
    c(n,'Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nTotal %s.\n#### %s'%(n,n),1,'gsm8k'); c(n,'#### %d'%(int(n)+2),0,'gsm8k'); c(n,'The answer is: %s'%n,1,'gsm8k')
for g,p,v in [('3','\\boxed{1}, \\boxed{2}, \\boxed{3}',1),('2, 3','x=2 \\text{ or } x=3',1),('2, 3','x=2 \\text{ or } x=4',0),('\\{2,3\\}','\\{3,2\\}',1),('4','The sum is 4 and the product is 5. So 4',1),
              ('(1,2)','(1,2)',1),('(1,2)','[1,2]',0),('10\\%','10',1),('\\frac{3}{2}','1\\frac12',1),('-\\frac{7}{3}','-2\\frac{1}{3}',1),('90','90^\\circ',1),
              ('\\text{Monday}','Monday',1),('1','\\frac{2}{2}',1)]:
    c(g,p,v,'misc')
print(len(rows))
import collections; print(collections.Counter(r[3] for r in rows)); print(collections.Counter(r[2] for r in rows))
with open('tests/data/grade/cases.tsv','w') as f:
    f.write('# gold\tprediction\tverdict\tkind -- written for egrc from the documented conventions of Math-Verify, MATH is_equiv, NeMo-Skills math_equal and the benchmark answer styles; \\n in a field is a newline\n')
    for g,p,v,k in rows:
        f.write('\t'.join(x.replace('\n','\\n') for x in (g,p,v,k))+'\n')
