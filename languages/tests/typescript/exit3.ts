function main(): number {
  return 3;
}

process.exit(main());
