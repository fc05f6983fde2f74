export default function Home() {
  return <h1>Civic Tech Jobs (ctjdeploy example)</h1>;
}
