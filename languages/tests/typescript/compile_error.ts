function square(n: number): number {
  return n * n;
}

const result: string = square(4);
console.log(result);
